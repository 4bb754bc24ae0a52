"""The web service: `create_app(settings=None, engine=None, config=None) -> Flask`.

The factory stays small: it loads the configuration (no I/O beyond reading config.json), builds
the backend (shared.runtime.Runtime: engine made on first use; the response cache), registers
the views (web/views.py, docs/DESIGN.md "HTTP contract"; web/feedback_views.py, "Feedback") and the
error handlers (web/errors.py), and
puts the WSGI fast path (web/fastpath.py) in front.
"""
from __future__ import annotations

from flask import Flask

from shared.runtime import Runtime

from . import errors, feedback_views, readers_views, views
from .backend import Backend
from .fastpath import FastPath


def _load_settings(settings, config):
    from shared import settings as settings_mod

    if settings is None:
        loaded_config, settings = settings_mod.load()
        return config or loaded_config, settings
    if config is None:
        from shared.config import load_config

        config = load_config(settings.config_path)
    return config, settings


def _strict_query():
    """Every route's query string is checked once, strictly (web/params.check_query): 400, one line."""
    from flask import request

    from .errors import WebError
    from .params import BadParam, check_query

    try:
        check_query(request.query_string)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None


def create_app(settings=None, engine=None, config=None) -> Flask:
    """Build the Flask app. `settings`/`config` default to shared.settings.load(); `engine`
    defaults to shared.db.make_engine(settings.database_url), created on first use."""
    config, settings = _load_settings(settings, config)
    app = Flask(__name__)
    backend = Backend(Runtime(config, settings, engine=engine))
    app.extensions["arxiv_bot"] = backend
    app.register_blueprint(views.bp)
    app.register_blueprint(readers_views.bp)
    app.register_blueprint(feedback_views.bp)
    errors.register(app)
    app.before_request(_strict_query)
    app.wsgi_app = FastPath(app.wsgi_app, backend.cache_for_path)
    return app
