"""/profiles (the public profiles, HTML) and /profiles.opml (their RSS feeds, for feed readers).
Private profiles are never listed."""
from __future__ import annotations

from flask import Blueprint, Response, request

from .errors import HTML_CSP, WebError
from .params import BadParam, request_base_url
from .views import _backend as backend

bp = Blueprint("readers", __name__)


def _base() -> str:
    """Absolute URLs for OPML (feed readers need them): feeds.public_url, else this request's."""
    configured = backend().config.feeds.public_url
    if configured:
        return configured.rstrip("/")
    try:
        return request_base_url(request.scheme, request.host)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None


def _public():
    readers = backend().readers()
    return [p for p in readers.public() if readers.configured]


@bp.get("/profiles")
def profiles():
    from shared.render.html import render_profiles
    from shared.render.links import Links

    items = [{"slug": p.slug, "url": f"/p/{p.slug}/", "categories": list(p.categories),
              "keywords": p.keyword_terms()[:12]} for p in _public()]
    return Response(render_profiles(items, links=Links.web("/profiles")), content_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": HTML_CSP, "Cache-Control": "public, max-age=60",
                             "X-Content-Type-Options": "nosniff"})


@bp.get("/profiles.opml")
def profiles_opml():
    from shared.render.opml import render_outline

    base = _base()
    feeds = [{"text": f"arXiv digest: {p.slug} ({', '.join(p.categories)})", "xml_url": f"{base}/p/{p.slug}/feed.xml",
              "html_url": f"{base}/p/{p.slug}/"} for p in _public()]
    return Response(render_outline("arXiv digests", feeds), content_type="text/x-opml; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
