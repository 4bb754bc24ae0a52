"""Feedback over HTTP (docs/DESIGN.md "Feedback"): /feedback and /p/<slug>/feedback.

- POST with the form field t=<token> records the rating the token carries (the page's "more
  like this" / "less like this" forms, and the confirmation page's one button). The answer: JSON
  when the client asks for it (static/feedback.js, in place), else 303 back to the page the form
  named (a local path), else a short page saying what was recorded.
- GET ?t=<token> never records anything (mail scanners and link previews open every link): it
  answers a confirmation page with one POST button.
- A forged, tampered, expired or mismatched token (another profile's at /p/<slug>/feedback, a
  profile that no longer exists, a private profile's key rotated since) records nothing and
  answers 400 with one line. A token needs no profile key: it rates only its paper for its
  profile.
- Each client address may make feedback.rate_limit_per_minute requests a minute (per web
  process); beyond that, 429 with Retry-After.
Ratings are only stored here: the scorer retrains on them at the next pass, never in a request.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, request

from shared import feedback
from shared.feedback_links import BadToken, read_token
from shared.models import Paper
from shared.profile_keys import generation, secret_key

from .errors import HTML_CSP, WebError
from .ratelimit import ClientLimiter
from .views import _backend as backend

bp = Blueprint("feedback", __name__)
WORDS = {"up": "more like this", "down": "less like this"}
MAX_BODY = 4096
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": HTML_CSP}


def _limit() -> None:
    limiter = backend().rt.memo("web.feedback_limiter",
                                lambda: ClientLimiter(backend().config.feedback.rate_limit_per_minute))
    wait = limiter.take(request.remote_addr or "?")
    if wait > 0:
        raise WebError(429, f"too many feedback requests; try again in {wait} s", headers={"Retry-After": str(wait)})


def _vote(slug: str | None):
    """(vote, profile, paper) of the request's token, checked; raises the 400 of a bad one."""
    token = request.form.get("t") if request.method == "POST" else request.args.get("t")
    be = backend()
    try:
        with be.rt.session() as s:
            vote = read_token(secret_key(s, be.settings), token or "", be.config.feedback.link_days)
            current = generation(s, vote.profile)
            paper = s.get(Paper, vote.paper_id)
            title = paper.title if paper is not None else None
    except BadToken as exc:
        raise WebError(400, str(exc)) from None
    profile = be.readers().get(vote.profile)
    if profile is None or vote.generation != current:
        raise WebError(400, "feedback link: its profile no longer exists or has a new key")
    if slug is not None and slug != vote.profile:
        raise WebError(400, "feedback link: it belongs to another profile")
    if title is None:
        raise WebError(400, "feedback link: the paper is not in this digest's database")
    return vote, profile, title


def _page(template: str, status: int = 200, **ctx) -> Response:
    from shared.render.html import render_feedback

    return Response(render_feedback(template, **ctx), status=status, content_type="text/html; charset=utf-8",
                    headers=HEADERS)


def confirm(slug: str | None = None):
    """GET: the confirmation page (one POST button); records nothing."""
    _limit()
    vote, profile, title = _vote(slug)
    return _page("confirm", token=request.args.get("t", "").strip(), action=request.path, title=title,
                 paper_id=vote.paper_id, words=WORDS[vote.rating], profile=profile.slug,
                 home=_home(profile))


def record(slug: str | None = None):
    """POST: record the token's rating (the last one wins; the same one again changes nothing)."""
    if (request.content_length or 0) > MAX_BODY:
        raise WebError(413, "feedback: request too large")
    _limit()
    vote, profile, title = _vote(slug)
    source = "web" if request.form.get("back") is not None else "link"
    with backend().rt.session() as s:
        feedback.record(s, vote.profile, [(vote.paper_id, vote.rating)], source)
    message = f"Recorded: {WORDS[vote.rating]}. Your next digest takes it into account."
    if "application/json" in request.headers.get("Accept", ""):
        body = json.dumps({"recorded": vote.rating, "paper": vote.paper_id, "message": message})
        return Response(body, content_type="application/json", headers={**HEADERS, "Cache-Control": "no-store"})
    back = request.form.get("back") or ""
    if back.startswith("/") and not back.startswith("//") and "\\" not in back and len(back) < 300:
        return Response(status=303, headers={**HEADERS, "Location": f"{back}#p-{vote.paper_id}"})
    return _page("recorded", message=message, title=title, paper_id=vote.paper_id, home=_home(profile))


def _home(profile) -> str | None:
    """The profile's page, when following the link needs no key."""
    if profile.private:
        return None
    readers = backend().readers()
    return "/" if profile.slug == readers.default_slug else f"/p/{profile.slug}/"


for rule, endpoint in (("/feedback", "feedback"), ("/p/<slug>/feedback", "profile_feedback")):
    bp.add_url_rule(rule, f"{endpoint}_get", confirm, methods=["GET"])
    bp.add_url_rule(rule, f"{endpoint}_post", record, methods=["POST"])


_script: list = []


@bp.get("/static/feedback.js")
def script():
    """The page's small script: the feedback forms in place (they work without it)."""
    from .cache import Entry
    from .views import send

    if not _script:
        from shared.render.html import static_text

        _script.append(Entry.make(static_text("feedback.js"), "text/javascript; charset=utf-8", None,
                                  **{"Cache-Control": "public, max-age=86400"}))
    return send(_script[0])
