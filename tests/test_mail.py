"""Mail: MAIL_URL, send_mail over real SMTP servers, the outbox, templates, checks.

The SMTP servers are real (aiosmtpd on loopback, ``tests/smtp_server.py``),
and so are the two that misbehave: one that never answers and one that
answers a byte at a time. What a test asserts is what a user would see: the
message the server received (headers, text and HTML parts, who logged in,
whether it was encrypted), ``send_mail``'s result and the warning it logged,
the ``ConfigError`` at start-up, and ``flask stack check``'s findings.
"""

from __future__ import annotations

import time
import typing as t

import pytest
from conftest import SHARED_REDIS_URL
from flask_mailman import Mail
from smtp_server import (
    Certificate,
    SilentServer,
    SMTPServer,
    TricklingServer,
    free_port,
    make_certificate,
)

import flaskstack
from flaskstack.checks import run_checks
from flaskstack.mail import mail_configured, missing_mail_problem, send_mail

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory
    from flask import Flask

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"
SENDER = "Example <no-reply@example.com>"
USER_PASSWORD = "s3cret p@ss"


class User:
    email = "joe.bloggs@example.com"


@pytest.fixture(autouse=True)
def no_mail_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAIL_URL", raising=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the test CA, as a deployment with a private CA would (``SSL_CERT_FILE``)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.ca))


def mail_app(make_app: AppFactory, url: str, **config: t.Any) -> Flask:
    settings = {"MAIL_URL": url, "FLASKSTACK_MAIL_FROM": SENDER, **config}
    return make_app(settings, profile="development")


def send_reset(app: Flask, to: str = User.email, **options: t.Any) -> bool:
    with app.app_context():
        return send_mail(
            to,
            "password_reset",
            url="https://app.example.com/reset?token=abc&x=1",
            expires_minutes=30,
            user=User(),
            **options,
        )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "flaskstack.mail"]


# -- over SMTP -------------------------------------------------------------------------


def test_plain_smtp_delivers_a_text_and_an_html_part(make_app: AppFactory) -> None:
    with SMTPServer() as server:
        app = mail_app(make_app, server.url())
        assert send_reset(app, reply_to="help@example.com") is True
        (received,) = server.wait_for(1)

    assert received.rcpt_tos == [User.email]
    assert received.mail_from == "no-reply@example.com"
    assert received.message["From"] == SENDER
    assert received.message["Reply-To"] == "help@example.com"
    assert received.subject == "Reset your password"
    text = received.part("text/plain")
    html = received.part("text/html")
    assert text is not None
    assert html is not None
    assert "https://app.example.com/reset?token=abc&x=1" in text  # not HTML-escaped
    assert "within 30 minutes" in text
    assert 'href="https://app.example.com/reset?token=abc&amp;x=1"' in html
    assert "<title>Reset your password</title>" in html
    assert received.tls is False


def test_starttls_and_login(make_app: AppFactory, certificate: Certificate, trust: None) -> None:
    server = SMTPServer(tls="starttls", certificate=certificate, users={"app": USER_PASSWORD})
    with server:
        app = mail_app(make_app, server.url(user="app", password=USER_PASSWORD))
        assert send_reset(app) is True
        (received,) = server.wait_for(1)

    assert received.tls is True
    assert received.login == "app"
    assert received.subject == "Reset your password"


def test_starttls_refuses_a_certificate_nobody_vouches_for(
    make_app: AppFactory, certificate: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    # smtplib's starttls() without a context checks no certificate; the password
    # would go to whoever sits between the app and the server.
    server = SMTPServer(tls="starttls", certificate=certificate, users={"app": USER_PASSWORD})
    with server:
        app = mail_app(make_app, server.url(user="app", password=USER_PASSWORD))
        assert send_reset(app) is False
        assert server.messages == []

    (warning,) = warnings_of(caplog)
    assert "certificate" in warning
    assert USER_PASSWORD not in warning


def test_implicit_tls_and_login(
    make_app: AppFactory, certificate: Certificate, trust: None
) -> None:
    server = SMTPServer(tls="implicit", certificate=certificate, users={"app": USER_PASSWORD})
    with server:
        url = server.url(user="app", password=USER_PASSWORD)
        assert url.startswith("smtps://")
        app = mail_app(make_app, url)
        assert send_reset(app) is True
        (received,) = server.wait_for(1)

    assert received.tls is True
    assert received.login == "app"


def test_a_refused_login_is_logged_and_returns_false(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with SMTPServer(users={"app": USER_PASSWORD}) as server:
        app = mail_app(make_app, server.url(user="app", password="wrong password"))
        assert send_reset(app) is False
        assert server.messages == []

    (warning,) = warnings_of(caplog)
    assert "j***@example.com" in warning
    assert User.email not in warning
    assert "refused the login" in warning
    assert "wrong password" not in warning
    assert "MAIL_URL" in warning


def test_a_refused_connection_returns_false_without_raising(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app(make_app, f"smtp://127.0.0.1:{free_port()}")
    assert send_reset(app) is False
    (warning,) = warnings_of(caplog)
    assert "ConnectionRefusedError" in warning
    assert "j***@example.com" in warning


@pytest.mark.parametrize("server_kind", [SilentServer, TricklingServer])
def test_a_server_that_does_not_answer_costs_at_most_the_timeout(
    make_app: AppFactory,
    caplog: pytest.LogCaptureFixture,
    server_kind: type[SilentServer] | type[TricklingServer],
) -> None:
    # The trickling server keeps every single read under the socket timeout; only
    # a deadline over the whole exchange stops it.
    with server_kind() as server:
        app = mail_app(make_app, server.url(), FLASKSTACK_MAIL_TIMEOUT=1)
        started = time.monotonic()
        assert send_reset(app) is False
        elapsed = time.monotonic() - started

    assert elapsed < 3, f"sending took {elapsed:.1f}s with FLASKSTACK_MAIL_TIMEOUT=1"
    (warning,) = warnings_of(caplog)
    assert "FLASKSTACK_MAIL_TIMEOUT" in warning or "timed out" in warning


def test_smtp_without_a_sender_is_not_sent(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with SMTPServer() as server:
        app = make_app({"MAIL_URL": server.url()}, profile="development")
        assert send_reset(app) is False
        assert server.messages == []
    assert "FLASKSTACK_MAIL_FROM" in warnings_of(caplog)[0]


# -- in the process: outbox, console ---------------------------------------------------


def test_the_testing_profile_keeps_mail_in_the_outbox(app: Flask, mail_outbox: list[t.Any]) -> None:
    assert app.config["MAIL_URL"] == "memory://"
    with app.app_context():
        assert mail_configured()
        assert send_mail(["a@example.com", "b@example.com"], "confirm_email", url="u", user=User())

    (message,) = mail_outbox
    assert message.subject == "Confirm your email address"
    assert message.to == ["a@example.com", "b@example.com"]
    assert "joe.bloggs@example.com" in message.body
    ((html, content_type),) = message.alternatives
    assert content_type == "text/html"
    assert "Confirm my address" in html


def test_the_outbox_is_empty_at_the_start_of_each_test(
    app: Flask, mail_outbox: list[t.Any]
) -> None:
    assert mail_outbox == []
    with app.app_context():
        send_mail("a@example.com", "password_changed", user=User())
    assert len(mail_outbox) == 1


def test_development_prints_mail_to_standard_output(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(profile="development")
    assert app.config["MAIL_URL"] == "console://"
    with app.app_context():
        assert send_mail("a@example.com", "email_changed", new_email="new@example.com", user=User())
    printed = capsys.readouterr().out
    assert "Subject: The email address of your account was changed" in printed
    assert "changed to new@example.com" in printed


def test_production_without_mail_url_sends_nothing_and_says_so(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = production_settings(
        tmp_path, FLASKSTACK_PASSWORD_RESET=False, FLASKSTACK_EMAIL_CONFIRMATION="off"
    )
    app = make_app(settings, profile="production")
    with app.app_context():
        assert not mail_configured()
        assert send_mail("a@example.com", "password_changed", user=User()) is False
    assert "no MAIL_URL is set" in warnings_of(caplog)[0]


# -- templates ---------------------------------------------------------------------------


def test_the_apps_own_template_replaces_flaskstacks(make_app: AppFactory, tmp_path: Path) -> None:
    folder = tmp_path / "templates" / "flaskstack" / "mail"
    folder.mkdir(parents=True)
    (folder / "password_changed.txt").write_text(
        '{% extends "flaskstack/mail/_layout.txt" %}'
        "{% block subject %}Heads up, {{ user.email }}{% endblock %}"
        "{% block body %}Our own words.{% endblock %}"
        "{% block footer %}The app's own footer.{% endblock %}",
        encoding="utf-8",
    )

    def use_templates(app: Flask) -> None:
        app.template_folder = str(tmp_path / "templates")

    app = make_app(profile="testing", before=use_templates)
    with app.app_context():
        assert send_mail("a@example.com", "password_changed", user=User())
    from flaskstack._mail_backend import outbox

    (message,) = outbox(app)
    assert message.subject == "Heads up, joe.bloggs@example.com"
    assert message.body == "Our own words.\n\n-- \nThe app's own footer."
    ((html, _),) = message.alternatives  # flaskstack's HTML part still applies
    assert "Your password was changed" in html


def test_templates_are_found_without_the_auth_pages(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_AUTH_URL_PREFIX": None}, profile="testing")
    assert "flaskstack_auth" not in app.blueprints
    with app.app_context():
        assert send_mail("a@example.com", "password_reset", url="u", expires_minutes=5, user=User())


def test_a_template_that_does_not_exist_raises(make_app: AppFactory) -> None:
    from jinja2 import TemplateNotFound

    app = make_app(profile="testing")
    with app.app_context(), pytest.raises(TemplateNotFound):
        send_mail("a@example.com", "no_such_message")
    with app.app_context(), pytest.raises(ValueError, match="not a mail template name"):
        send_mail("a@example.com", "../auth/login")


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("smtp://", "no host"),
        ("smtp://user:hunter2@host:99999", "valid port"),
        ("smtp://user:hunter2@host?tls=1", "unknown query argument 'tls'"),
        ("smtps://host?starttls=1", "TLS already"),
        ("smtp://host/path", "no path"),
        ("pop3://host", "'pop3' is not one of"),
        ("console://x", "takes nothing"),
        ("file://relative/dir", "absolute directory"),
        ("localhost:25", "not one of"),
    ],
)
def test_a_bad_mail_url_is_refused_at_start_up(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("MAIL_URL", url)
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(profile="development")
    (problem,) = caught.value.problems
    assert problem.key == "MAIL_URL"
    assert reason in problem.value
    assert "smtp://[user:password@]host[:port][?starttls=1]" in problem.expected
    assert "environment variable MAIL_URL" in problem.fix
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("sender", ["nobody", "a@example.com\nBcc: all@example.com"])
def test_a_sender_that_is_not_an_address_is_refused(make_app: AppFactory, sender: str) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"FLASKSTACK_MAIL_FROM": sender}, profile="development")
    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_MAIL_FROM"
    assert "Example <app@example.com>" in problem.expected


def test_mail_url_forms_fill_flask_mailmans_keys(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app(
        {"MAIL_URL": "smtp://me%40example.com:p%3Ass@smtp.example.com:587?starttls=1"},
        profile="development",
    )
    assert {k: v for k, v in app.config.items() if k.startswith("MAIL_") and k != "MAIL_URL"} == {
        "MAIL_BACKEND": "flaskstack._mail_backend.EmailBackend",
        "MAIL_SERVER": "smtp.example.com",
        "MAIL_PORT": 587,
        "MAIL_USERNAME": "me@example.com",
        "MAIL_PASSWORD": "p:ss",
        "MAIL_USE_TLS": True,
        "MAIL_USE_SSL": False,
        "MAIL_TIMEOUT": 10.0,
    }
    target = tmp_path / "sent"
    app = make_app({"MAIL_URL": f"file://{target}"}, profile="development")
    with app.app_context():
        assert send_mail("a@example.com", "password_changed", user=User())
    (written,) = target.iterdir()
    assert "Subject: Your password was changed" in written.read_text(encoding="utf-8")


def test_the_apps_own_mail_keys_win_and_are_reported(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_URL", "smtp://user:hunter2@smtp.example.com:25")

    def own_server(app: Flask) -> None:
        app.config["MAIL_SERVER"] = "relay.internal"

    app = make_app(profile="development", before=own_server)
    assert app.config["MAIL_SERVER"] == "relay.internal"
    assert app.config["MAIL_PORT"] == 25
    output = app.test_cli_runner().invoke(args=["stack", "config"]).output
    assert (
        "ignored: environment variable MAIL_URL (MAIL_SERVER from the URL) = 'smtp.example.com' "
        "(overridden by MAIL_SERVER set by the app ('relay.internal'), which Flask-Mailman uses)"
    ) in output
    assert "hunter2" not in output
    ids = {finding.id for finding in run_checks(app, tags=["config"])}
    assert "config.W002" in ids


def test_an_app_with_its_own_flask_mailman_keeps_it(make_app: AppFactory) -> None:
    def register(app: Flask) -> None:
        app.config["MAIL_BACKEND"] = "locmem"
        Mail(app)

    app = make_app(profile="development", before=register)
    with app.app_context():
        assert mail_configured()
        assert send_mail("a@example.com", "password_changed", user=User())
    (message,) = app.extensions["mailman"].outbox
    assert message.subject == "Your password was changed"

    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"MAIL_URL": "memory://"}, profile="development", before=register)
    (problem,) = caught.value.problems
    assert problem.id == "mail.E004"
    assert "remove Flask-Mailman's Mail(app)" in problem.fix


def production_settings(tmp_path: Path, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "SECRET_KEY": STRONG_SECRET,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        **extra,
    }


@pytest.mark.parametrize("url", ["console://", "memory://", "file:///var/mail/app"])
def test_production_refuses_mail_that_is_not_delivered(
    make_app: AppFactory, tmp_path: Path, url: str
) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(production_settings(tmp_path, MAIL_URL=url), profile="production")
    (problem,) = caught.value.problems
    assert problem.id == "mail.E002"
    assert "MAIL_URL" in problem.fix


def test_production_refuses_smtp_without_a_sender(make_app: AppFactory, tmp_path: Path) -> None:
    settings = production_settings(tmp_path, MAIL_URL="smtp://u:hunter2@smtp.example.com:587")
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(settings, profile="production")
    (problem,) = caught.value.problems
    assert problem.id == "mail.E003"
    assert problem.key == "FLASKSTACK_MAIL_FROM"
    assert "hunter2" not in str(caught.value)

    app = make_app({**settings, "FLASKSTACK_MAIL_FROM": SENDER}, profile="production")
    assert mail_configured(app)


def test_missing_mail_problem_names_mail_url() -> None:
    problem = missing_mail_problem("password reset")
    assert problem.id == "mail.E001"
    assert problem.key == "MAIL_URL"
    assert "MAIL_URL=" in problem.fix
    assert "password reset" in str(problem)


# -- flask stack check --deploy ---------------------------------------------------------


def deploy_check(app: Flask) -> t.Any:
    return app.test_cli_runner().invoke(args=["stack", "check", "--deploy", "--tag", "mail"])


def test_the_deploy_check_logs_in_to_the_smtp_server(
    make_app: AppFactory, certificate: Certificate, trust: None
) -> None:
    server = SMTPServer(tls="starttls", certificate=certificate, users={"app": USER_PASSWORD})
    with server:
        app = mail_app(make_app, server.url(user="app", password=USER_PASSWORD))
        result = deploy_check(app)
        assert "mail." not in result.output, result.output
        assert result.exit_code == 0, result.output

        app = mail_app(make_app, server.url(user="app", password="n0t-the-pa55word"))
        result = deploy_check(app)
    assert result.exit_code == 1
    assert "mail.E005" in result.output
    assert "refused the login" in result.output
    assert "n0t-the-pa55word" not in result.output


def test_the_deploy_check_reports_a_closed_port(make_app: AppFactory) -> None:
    port = free_port()
    result = deploy_check(mail_app(make_app, f"smtp://127.0.0.1:{port}"))
    assert result.exit_code == 1
    assert f"mail.E005: The SMTP server at 127.0.0.1:{port}" in result.output
    assert "HINT: Check MAIL_URL" in result.output


def test_the_deploy_check_refuses_console_mail(make_app: AppFactory) -> None:
    result = deploy_check(make_app(profile="development"))
    assert result.exit_code == 1
    assert "mail.E002: 'MAIL_URL' is 'console://'" in result.output
