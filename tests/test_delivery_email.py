"""E-mail delivery against a real SMTP server on a socket (aiosmtpd): the messages as a mail
client sees them (parsed with the email package), STARTTLS/TLS with a login, recipients the
server refuses (permanently or for now), exactly once per (day, profile, channel, recipient)."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.deliverer import handlers, mail
from shared.errors import ConfigError, TransientError
from shared.smtp_url import mask_url, parse_smtp_url
from tests.delivery_seed import (DAY, HOSTILE, deliver_now, make_runtime, paper_rows, plan, seed_pass,
                                 statuses)
from tests.standins.smtp import SmtpStandin, make_certificate

TO = ["ana@example.org", "bo@example.org"]


def _email_rt(tmp_path, db_url, smtp, to=TO, **kw):
    return make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": list(to)}],
                        env={"SMTP_URL": smtp.url, **kw.pop("env", {})}, **kw)


def test_one_multipart_message_per_recipient_with_escaped_text(tmp_path, db_url):
    with SmtpStandin() as smtp:
        rt = _email_rt(tmp_path, db_url, smtp)
        pass_id = seed_pass(rt, paper_rows(4))
        deliver_now(rt, plan(rt, pass_id))
    assert [s[:2] for s in statuses(rt)] == [(TO[0], "sent"), (TO[1], "sent")]
    assert sorted(r for _, r, _ in smtp.messages) == TO and len(smtp.raw) == 2
    for mail_from, rcpt, msg in smtp.messages:
        assert mail_from == "bot@example.org"
        assert msg["To"] == rcpt and msg["From"] == "arxiv-bot <bot@example.org>"
        assert msg["Subject"] == "arXiv digest 2024-11-28 · default · 4 papers"
        assert msg["List-Unsubscribe"] == "<https://digest.example.org/>"
        assert re.fullmatch(rf"<arxiv-bot\.2024-11-28\.{pass_id}\.default\.[0-9a-f]{{16}}@example\.org>",
                            msg["Message-ID"])
        assert msg.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in msg.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        text = msg.get_body(("plain",)).get_content()
        page = msg.get_body(("html",)).get_content()
        # Plain text shows the hostile title as it is; the HTML shows it as text, never as markup.
        assert HOSTILE in text
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
        low = page.lower()
        assert "<script" not in low and "<img" not in low and "javascript:" not in low.replace("javascript:alert(1)) &lt;", "")
        assert "<style" not in low and "<link" not in low and 'style="' in page  # inline styles only
        hrefs = re.findall(r'href="([^"]+)"', page)
        assert hrefs and all(h.startswith("https://") for h in hrefs)
        for link in ("https://arxiv.org/abs/2411.17700", "https://arxiv.org/pdf/2411.17700v1",
                     "https://digest.example.org/"):
            assert link in text and f'href="{link}"' in page
        assert "TL;DR" in text and "<strong>Contribution</strong>" in page  # the summary, sanitised
        # "More / less like this": signed GET links to the site's confirmation page, per paper.
        links = re.findall(r'href="(https://digest\.example\.org/feedback\?t=[\w.\-]+)"', page)
        assert len(links) == 2 * 4 and all(link in text for link in links)
    _check_feedback_links(rt, smtp.messages[0][2])
    # The Message-ID is a function of (pass, profile, recipient): a retry sends the same one.
    ids = {m["Message-ID"] for _, _, m in smtp.messages}
    assert len(ids) == 2


def _check_feedback_links(rt, msg) -> None:
    """The mail's feedback links are real tokens for this profile: the web's confirmation page
    accepts each (a GET records nothing), for the paper and rating it names."""
    from shared.feedback_links import read_token

    page = msg.get_body(("html",)).get_content()
    tokens = re.findall(r'/feedback\?t=([\w.\-]+)"', page)
    with rt.session() as s:
        from shared.profile_keys import secret_key

        secret = secret_key(s, rt.settings)
    votes = [read_token(secret, t) for t in tokens]
    assert {v.profile for v in votes} == {"default"}
    seen = {(v.paper_id, v.rating) for v in votes}
    assert ("2411.17700", "up") in seen and ("2411.17700", "down") in seen


def test_starttls_with_login_and_implicit_tls(tmp_path, sqlite_url, monkeypatch):
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test certificate
    for tls in ("starttls", "implicit"):
        with SmtpStandin(tls=tls, cert=cert, key=key, auth=("mailer", "p@ss:word")) as smtp:
            url = smtp.url.replace("p@ss:word", "p%40ss%3Aword")
            rt = _email_rt(tmp_path / tls, f"sqlite:///{tmp_path}/{tls}.db", smtp, env={"SMTP_URL": url})
            deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(2))))
            assert [s[1] for s in statuses(rt)] == ["sent", "sent"], statuses(rt)
            assert len(smtp.messages) == 2


def test_password_is_never_sent_in_clear_to_a_remote_server(tmp_path, sqlite_url):
    # 127.0.0.2 is this machine, but not a name the client treats as local; no TLS offered.
    with SmtpStandin(auth=("u", "pw"), host="127.0.0.2") as smtp:
        rt = _email_rt(tmp_path, sqlite_url, smtp, env={"SMTP_URL": f"smtp://u:secretpw@127.0.0.2:{smtp.port}"})
        deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(1))))
    rows = statuses(rt)
    assert all(r[1] == "failed" and "offers no STARTTLS" in r[2] and "secretpw" not in r[2] for r in rows), rows
    assert smtp.total == 0


def test_refused_recipients_permanent_and_transient(tmp_path, db_url):
    refuse = {"gone@example.org": "550 5.1.1 no such user", "busy@example.org": "450 4.2.1 mailbox busy"}
    with SmtpStandin(refuse=refuse) as smtp:
        rt = _email_rt(tmp_path, db_url, smtp, to=["ok@example.org", "gone@example.org", "busy@example.org"])
        work = plan(rt, seed_pass(rt, paper_rows(2)))
        [(_task, kwargs)] = work
        with pytest.raises(TransientError, match="1 of 3 deliveries not sent yet"):
            handlers.deliver(rt, **kwargs)
        rows = {r[0]: r for r in statuses(rt)}
        assert rows["ok@example.org"][1] == "sent"
        assert rows["gone@example.org"][1] == "failed" and "550" in rows["gone@example.org"][2]
        assert rows["busy@example.org"][1] == "pending" and "450" in rows["busy@example.org"][2]
        # The retry: the mailbox is free now; the permanent failure is not tried again.
        del smtp.refuse["busy@example.org"]
        handlers.deliver(rt, **kwargs)
        rows = {r[0]: r for r in statuses(rt)}
        assert rows["busy@example.org"][1] == "sent" and rows["busy@example.org"][3] == 2
        assert rows["gone@example.org"][3] == 1
    assert sorted(smtp.counts.items()) == [("busy@example.org", 1), ("ok@example.org", 1)]


def test_unreachable_server_keeps_the_batch_pending(tmp_path, sqlite_url):
    from tests.standins.smtp import free_port

    rt = make_runtime(tmp_path, sqlite_url, deliver=[{"type": "email", "to": TO}],
                      env={"SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})
    [(_task, kwargs)] = plan(rt, seed_pass(rt, paper_rows(1)))
    with pytest.raises(TransientError, match="cannot reach the mail server"):
        handlers.deliver(rt, **kwargs)
    # The first recipient saw the error; the second was not even tried (the server is down).
    assert [(r[1], r[3]) for r in statuses(rt)] == [("pending", 1), ("pending", 0)]


def test_a_second_pass_of_the_same_day_delivers_nothing_again(tmp_path, db_url):
    with SmtpStandin() as smtp:
        rt = _email_rt(tmp_path, db_url, smtp)
        deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(2))))
        again = seed_pass(rt, paper_rows(2), day=DAY)  # e.g. a second `run` the same morning
        assert plan(rt, again) == []
        # A recipient added to the config in between gets that day's digest, and only they do.
        rt2 = _email_rt(tmp_path, db_url, smtp, to=[*TO, "new@example.org"])
        deliver_now(rt2, plan(rt2, seed_pass(rt2, paper_rows(2), day=DAY)))
        # The next announcement day is a new digest for everyone.
        deliver_now(rt2, plan(rt2, seed_pass(rt2, paper_rows(2), day=DAY.replace(day=29))))
    assert sorted(smtp.counts.items()) == [("ana@example.org", 2), ("bo@example.org", 2), ("new@example.org", 2)]


def test_an_empty_digest_is_not_mailed(tmp_path, sqlite_url):
    with SmtpStandin() as smtp:
        rt = _email_rt(tmp_path, sqlite_url, smtp)
        assert plan(rt, seed_pass(rt, [])) == []
    assert smtp.total == 0


def test_message_id_is_stable_and_differs_per_recipient(tmp_path, sqlite_url):
    rt = make_runtime(tmp_path, sqlite_url)
    from services.deliverer import content

    pass_id = seed_pass(rt, paper_rows(1))
    with rt.session() as s:
        d = content.load(rt, s, pass_id, "default")
    a = mail.message_id(d, "Ana@Example.org", "example.org")
    assert a == mail.message_id(d, "ana@example.org", "example.org")
    assert a != mail.message_id(d, "bo@example.org", "example.org")


# -- SMTP_URL -------------------------------------------------------------------------------------

def test_smtp_url_parsing_and_errors():
    t = parse_smtp_url("smtps://user%40corp:p%40ss@mail.example.org")
    assert (t.scheme, t.host, t.port, t.user, t.password) == ("smtps", "mail.example.org", 465, "user@corp", "p@ss")
    assert parse_smtp_url("smtp://mail.example.org:587").port == 587
    assert parse_smtp_url("smtp://localhost").port == 25
    for bad, why in (("http://x", "must start with smtp"), ("smtp://", "names no host"),
                     ("smtp://u:pw@h:99999", "bad port"), ("smtp://h/path?x=1", "expected smtp")):
        with pytest.raises(ConfigError, match=why) as err:
            parse_smtp_url(bad)
        assert "pw" not in str(err.value)


@hsettings(max_examples=200, deadline=None)
@given(user=st.text(st.characters(blacklist_characters="@/?#", blacklist_categories=("Cs", "Cc")), min_size=1,
                    max_size=12),
       password=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=6, max_size=24))
def test_masked_smtp_url_never_shows_the_password(user, password):
    from urllib.parse import quote

    url = f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@mail.example.org:587"
    assert mask_url(url) == f"smtp://{quote(user, safe='')}:***@mail.example.org:587"
    try:
        parsed = parse_smtp_url(url)
    except ConfigError as exc:
        assert quote(password, safe="") not in str(exc)
    else:
        assert parsed.password == password and "password" not in repr(parsed)
