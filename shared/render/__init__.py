"""Renderers shared by the publisher and the web service: README.md (markdown), RSS/Atom/JSON
Feed and papers.json (feeds), the HTML page (html), and the sanitising helpers (sanitize).

Each takes plain paper dicts (shared.digest) and returns str/bytes; none does I/O. Import the
submodules directly (``from shared.render.feeds import render_rss``); this package imports
nothing heavy at import time.
"""
