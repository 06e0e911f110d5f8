"""The account flows behind the pages and the JSON endpoints: reset, confirm, change.

Each flow is a function here; :mod:`._account_views` (pages) and
:mod:`._account_api` (JSON) only read input and render answers, so both
behave the same. The rules they keep:

- **Nothing tells who has an account.** Asking for a reset link, or for a
  new confirmation link, gets the same answer whether the address has an
  account or not; the mail itself is sent after the answer (with an SMTP
  server), so the answer takes the same time too. Both are throttled per
  address and per client (``FLASKSTACK_ACCOUNT_*_LIMIT``), whether the
  account exists or not.
- **Credentials revoke what they should.** A new password (reset or change)
  ends every other session and remember-me cookie of the user
  (:func:`~flaskstack.auth.revoke_logins`) and voids every reset link; a
  reset, done by someone who may not hold any session, ends them all. A new
  address voids the links sent to the old one, and the old address is told.
- **Mail never fails a request that did its work.** A message that cannot be
  sent is logged by :mod:`flaskstack.mail`; the page still answers.
"""

from __future__ import annotations

import functools
import logging
import math
import typing as t

import sqlalchemy as sa
from flask import Flask, after_this_request, current_app, has_request_context, request
from werkzeug.exceptions import TooManyRequests

from flaskstack import jobs
from flaskstack._state import current_state
from flaskstack.database import db

from . import _account_tokens as tokens
from ._models import normalise_email, user_by_email, user_key
from ._passwords import check_policy
from ._protocols import check_user_password, set_user_password

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from flaskstack.jobs import Task

    from ._account_tokens import AccountModels

__all__ = [
    "AccountError",
    "LinksThrottled",
    "change_password",
    "confirm_email",
    "confirm_email_change",
    "confirmation_mode",
    "is_confirmed",
    "request_email_change",
    "request_password_reset",
    "reset_password",
    "send_confirmation",
]

_logger = logging.getLogger("flaskstack.auth")

SENT_IF_EXISTS = (
    "If an account uses that address, a message with a link is on its way to it. The link "
    "works once."
)
"""The answer to every request for a link, whether the account exists or not."""

INVALID_LINK = (
    "This link is invalid or has expired: links work once, for a limited time, and only the "
    "newest one sent works. Ask for a new one."
)
WRONG_PASSWORD = "The current password is wrong."
EMAIL_TAKEN = "An account with this email already exists."


class AccountError(ValueError):
    """A flow refused its input; ``field`` names the input at fault (``None``: the request)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def models() -> AccountModels:
    """The account models of the current app.

    :raises LookupError: when the account flows are off for the app.
    """
    found: AccountModels | None = current_state().auth.account_models
    if found is None:
        raise LookupError(
            "the account flows are off for this app: it uses its own LoginManager, or its user "
            "model lacks what the auth pages need (flask stack check says which)"
        )
    return found


def confirmation_mode() -> str:
    """``off``, ``optional`` or ``required`` (``FLASKSTACK_EMAIL_CONFIRMATION``).

    ``off`` whatever the setting when the account flows are off for the app.
    """
    if current_state().auth.account_models is None:
        return "off"
    return str(current_app.config["FLASKSTACK_EMAIL_CONFIRMATION"])


def is_confirmed(user: t.Any) -> bool:
    """Whether ``user`` confirmed the address they have now."""
    return tokens.is_confirmed(models(), user)


# -- mail -----------------------------------------------------------------------


def _sends_over_network(app: Flask) -> bool:
    url = app.config.get("MAIL_URL") or ""
    return str(url).lower().startswith("smtp")


def _later(
    work: t.Callable[[], object],
    *instances: t.Any,
    job: tuple[Task[..., None], tuple[t.Any, ...]] | None = None,
) -> None:
    """Run ``work`` once the response has gone out, when mail goes over the network.

    Then how long the answer takes says nothing about what ``work`` does
    (whether an account exists, whether a message is sent), and a slow mail
    server never holds the answer back. With the console or in-memory
    backends (development, tests) it runs at once. ``work`` runs in an app
    context of its own; the model ``instances`` it uses are loaded before
    the request's database session ends. A failure is logged and ends there.

    With background jobs on (:setting:`FLASKSTACK_JOBS`), ``job`` (one of
    the jobs below and its arguments) is enqueued instead, at the same
    moment: a worker sends the message, and retries it when the mail server
    fails.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if job is not None and current_state().jobs is not None:
        task, arguments = job
        work = functools.partial(task.enqueue, *arguments)
        instances = ()
    if not (has_request_context() and _sends_over_network(app)):
        work()
        return

    from flaskstack.logs import _carrying_request_id, request_id

    carried = request_id()

    def run() -> None:
        with app.app_context(), _carrying_request_id(carried):
            try:
                work()
            except Exception:  # the answer is gone: nobody else would see it
                _logger.exception("account mail after the response failed")

    @after_this_request
    def schedule(response: Response) -> Response:
        # The view is done (it may have committed again): load what the work reads.
        for instance in instances:
            _load(instance)
        response.call_on_close(run)
        return response


def _send(to: str, template: str, user: t.Any, **context: t.Any) -> None:
    """Send ``template`` about ``user`` to ``to`` (:func:`_later`: over SMTP, after the response).

    ``context`` holds plain values only (it may go through a job).
    """
    from flaskstack.mail import send_mail  # imported by requests that send mail only

    # A failure is logged by send_mail, with what to check.
    _later(
        functools.partial(send_mail, to, template, user=user, **context),
        user,
        job=(send_notice, (to, template, user_key(user), context)),
    )


def deliver_notice(to: str, template: str, user_id: t.Any, context: dict[str, t.Any]) -> bool:
    """Send ``template`` about the user ``user_id`` to ``to``; whether the message went.

    Nothing is sent, and ``True`` returned, when the user no longer exists.
    """
    from flaskstack.mail import send_mail

    user = db.session.get(current_state().auth.user_model, user_id)  # type: ignore[arg-type]
    if user is None:
        return True
    return send_mail(to, template, user=user, **context)


def _load(value: t.Any) -> None:
    """Load a model instance's columns now: the message is rendered after the request,
    when the instance no longer has a database session to load them from."""
    state = sa.inspect(value, raiseerr=False)
    mapper = getattr(state, "mapper", None)
    if mapper is not None:
        for attribute in mapper.column_attrs:
            getattr(value, attribute.key)


def _link(endpoint: str, token: str) -> str:
    from flask import url_for

    return url_for(endpoint, token=token, _external=True)


def _throttles() -> tuple[t.Any, t.Any]:
    from flaskstack.throttle import Throttle, _normalize_address

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    window = config["FLASKSTACK_ACCOUNT_EMAIL_WINDOW"]
    return (
        Throttle.for_app(
            app,
            "account-email",
            config["FLASKSTACK_ACCOUNT_EMAIL_LIMIT"],
            window,
            normalize=normalise_email,
        ),
        Throttle.for_app(
            app,
            "account-address",
            config["FLASKSTACK_ACCOUNT_ADDRESS_LIMIT"],
            window,
            normalize=_normalize_address,
        ),
    )


class LinksThrottled(TooManyRequests):
    """429: too many requests for a link, for this address or from this client."""

    description = (
        "Too many requests for a link: wait before asking again, and look for the messages "
        "already sent in your inbox and spam folder."
    )

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after=max(1, math.ceil(retry_after)))


def _count_request(email: str) -> None:
    """Count a request for a link against the address and the client; 429 over either limit."""
    per_email, per_client = _throttles()
    client = (request.remote_addr or "") if has_request_context() else ""
    verdicts = (per_email.hit(email), per_client.hit(client))
    waits = [verdict.retry_after for verdict in verdicts if verdict.blocked]
    if waits:
        raise LinksThrottled(max(waits))


# -- password reset -------------------------------------------------------------


def request_password_reset(email: str) -> None:
    """Send a reset link to ``email`` if an account has it; the same for the caller either way.

    :raises werkzeug.exceptions.TooManyRequests: over a limit (429, ``Retry-After``).
    """
    email = normalise_email(email)
    _count_request(email)
    user = user_by_email(email)
    if user is None or not user.is_active:
        return
    max_age = current_app.config["FLASKSTACK_PASSWORD_RESET_MAX_AGE"]
    _mail_link(
        user,
        tokens.RESET,
        email,
        "flaskstack_auth.reset_password",
        "password_reset",
        max_age,
        expires_minutes=max(1, max_age // 60),
    )


def _mail_link(
    user: t.Any,
    purpose: str,
    email: str,
    endpoint: str,
    template: str,
    max_age: float,
    *,
    unless_confirmed: bool = False,
    **context: t.Any,
) -> None:
    """Store a new ``purpose`` link for ``user`` and mail it to ``email`` (:func:`_later`).

    The link is made now (it needs the request's URL); storing it and
    sending it come after the response over SMTP, so an address with an
    account is answered as fast as one without. With ``unless_confirmed``,
    nothing is stored or sent if the user has confirmed their address by then.
    """
    link = _Link(
        user_key(user), purpose, email, tokens.new_token(), template, max_age, unless_confirmed
    )
    url = _link(endpoint, link.token)
    _later(
        functools.partial(deliver_link, link, url, context),
        job=(send_link, (link._asdict(), url, context)),
    )


class _Link(t.NamedTuple):
    """A link to store and mail: who for, what for, where to, and its token."""

    user_id: t.Any
    purpose: str
    email: str
    token: str
    template: str
    max_age: float
    unless_confirmed: bool


def deliver_link(
    link: _Link,
    url: str,
    context: dict[str, t.Any],
    *,
    issued: bool = False,
    on_issued: t.Callable[[], object] | None = None,
) -> bool | None:
    """Store ``link``'s token (unless ``issued``) and mail ``url``; whether the message went.

    ``on_issued`` is called once the token is committed, before the message is sent.

    ``None``: nothing to send (the user is gone or disabled, the address was
    confirmed meanwhile, or, once ``issued``, the token was used, replaced
    by a newer one or expired).
    """
    from flaskstack.mail import send_mail  # imported by requests that send mail only

    user = _active_user(link.user_id)
    if user is None or (link.unless_confirmed and is_confirmed(user)):
        return None
    if issued:
        if tokens.peek(models(), link.token, link.purpose) is None:
            return None
    else:
        tokens.issue(models(), user, link.purpose, link.email, link.max_age, token=link.token)
        db.session.commit()
        if on_issued is not None:
            on_issued()
    return send_mail(link.email, link.template, user=user, url=url, **context)


# -- the same, as background jobs ------------------------------------------------
# With FLASKSTACK_JOBS on, a worker sends the account mail. A finished job is
# deleted at once (its arguments hold the link). A message the mail server
# refuses raises MailNotSent, so the job is retried (after 10 s, 1 min and
# 5 min); a link job stores its token once, on its first run, and a retry
# sends it only while the token is still the live one.


class MailNotSent(Exception):
    """The mail server did not take the message (the reason is logged); the job is retried."""


@jobs.job(retries=3, backoff=(10, 60, 300), result_ttl=0)
def send_link(link: dict[str, t.Any], url: str, context: dict[str, t.Any]) -> None:
    """Store and mail an account link (reset, confirmation, change of address)."""
    from rq import get_current_job

    current = get_current_job()
    issued = bool(current is not None and current.meta.get("flaskstack_issued"))
    details = _Link(**link)

    def remember_issued() -> None:
        # Stored from here on: a retry must not replace a newer link of the user's.
        if current is not None:
            current.meta["flaskstack_issued"] = True
            current.save_meta()  # type: ignore[no-untyped-call]

    sent = deliver_link(details, url, context, issued=issued, on_issued=remember_issued)
    if sent is False:
        raise MailNotSent(f"the {details.template} message to {details.email} was not sent")


@jobs.job(retries=3, backoff=(10, 60, 300), result_ttl=0)
def send_notice(to: str, template: str, user_id: t.Any, context: dict[str, t.Any]) -> None:
    """Mail a notice about an account (password changed, address changed)."""
    if not deliver_notice(to, template, user_id, context):
        raise MailNotSent(f"the {template} message to {to} was not sent")


def reset_target(token: str) -> t.Any | None:
    """The user a live reset ``token`` is for, or ``None``; nothing is used up."""
    row = tokens.peek(models(), token, tokens.RESET)
    user = None if row is None else _active_user(row.user_id)
    return user if user is not None and _same_password(user, row) else None


def _same_password(user: t.Any, row: t.Any) -> bool:
    """Whether ``user``'s password is still the one reset ``row`` was issued under."""
    return bool(row.fingerprint == tokens.fingerprint(user))


def reset_password(token: str, password: str) -> t.Any:
    """Give the user of ``token`` the new ``password``; end every session of theirs.

    Commits. Whoever calls it may sign the user in afterwards (the page does).

    :raises AccountError: for a token that is not live (``field="token"``).
    :raises PasswordPolicyError: for a password the policy refuses; the token stays live.
    """
    check_policy(password)
    row = tokens.redeem(models(), token, tokens.RESET)
    user = None if row is None else _active_user(row.user_id)
    if row is None or user is None or not _same_password(user, row):
        db.session.rollback()
        raise AccountError(INVALID_LINK, "token")
    _set_password(user, password)
    # The link arrived at that address: the user owns it.
    tokens.confirm_address(models(), user, row.email)
    _revoke_logins(user, keep_current=False)
    db.session.commit()
    _send(user.email, "password_changed", user)
    return user


def _set_password(user: t.Any, password: str) -> None:
    set_user_password(user, password)
    tokens.void(models(), user, tokens.RESET)


def _revoke_logins(user: t.Any, *, keep_current: bool) -> None:
    from . import revoke_logins

    revoke_logins(user, keep_current=keep_current)


def _active_user(user_id: t.Any) -> t.Any | None:
    user = db.session.get(current_state().auth.user_model, user_id)  # type: ignore[arg-type]
    return user if user is not None and user.is_active else None


# -- change password ------------------------------------------------------------


def change_password(user: t.Any, current: str, new: str) -> None:
    """Replace ``user``'s password after checking the ``current`` one; commits.

    Every other session and remember-me cookie of the user ends; this one
    stays signed in.

    :raises AccountError: for a wrong current password (``field="current_password"``).
    :raises PasswordPolicyError: for a new password the policy refuses.
    """
    if not check_user_password(user, current):
        raise AccountError(WRONG_PASSWORD, "current_password")
    check_policy(new)
    _set_password(user, new)
    _revoke_logins(user, keep_current=True)
    db.session.commit()
    _send(user.email, "password_changed", user)


# -- email confirmation ---------------------------------------------------------


def send_confirmation(user: t.Any) -> None:
    """Send ``user`` a link confirming the address they have now; earlier links stop working."""
    _send_confirmation(user)


def _send_confirmation(user: t.Any, *, unless_confirmed: bool = False) -> None:
    _mail_link(
        user,
        tokens.CONFIRM,
        user.email,
        "flaskstack_auth.confirm_email",
        "confirm_email",
        current_app.config["FLASKSTACK_EMAIL_CONFIRMATION_MAX_AGE"],
        unless_confirmed=unless_confirmed,
    )


def request_confirmation(email: str) -> None:
    """Send a new confirmation link to ``email`` if an unconfirmed account has it.

    The same for the caller either way, and throttled like reset links.
    """
    email = normalise_email(email)
    _count_request(email)
    user = user_by_email(email)
    if user is None or not user.is_active:
        return
    # Whether it is confirmed is asked after the response too: the answer's
    # timing tells nothing.
    _send_confirmation(user, unless_confirmed=True)


def confirmation_target(token: str) -> t.Any | None:
    """The user a live confirmation ``token`` is for, or ``None``; nothing is used up."""
    row = tokens.peek(models(), token, tokens.CONFIRM)
    if row is None:
        return None
    user = _active_user(row.user_id)
    return user if user is not None and user.email == row.email else None


def confirm_email(token: str) -> t.Any:
    """Record that the user of ``token`` owns their address; commits.

    :raises AccountError: for a token that is not live, or sent to an
        address the user no longer has (``field="token"``).
    """
    row = tokens.redeem(models(), token, tokens.CONFIRM)
    user = None if row is None else _active_user(row.user_id)
    if row is None or user is None or user.email != row.email:
        db.session.rollback()
        raise AccountError(INVALID_LINK, "token")
    tokens.confirm_address(models(), user, row.email)
    db.session.commit()
    return user


# -- change email ---------------------------------------------------------------


def request_email_change(user: t.Any, current_password: str, new_email: str) -> None:
    """Send a link to ``new_email`` that moves ``user`` to it.

    Nothing changes until the link is followed; then the old address is told.

    :raises AccountError: for a wrong password (``field="current_password"``) or an
        address that is the user's already or another account's (``field="email"``).
    """
    if not check_user_password(user, current_password):
        raise AccountError(WRONG_PASSWORD, "current_password")
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise AccountError("This is already your email address.", "email")
    if user_by_email(new_email) is not None:
        raise AccountError(EMAIL_TAKEN, "email")
    _mail_link(
        user,
        tokens.CHANGE_EMAIL,
        new_email,
        "flaskstack_auth.confirm_email_change",
        "confirm_email",
        current_app.config["FLASKSTACK_EMAIL_CONFIRMATION_MAX_AGE"],
        new_email=new_email,
    )


def email_change_target(token: str) -> tuple[t.Any, str] | None:
    """The user and new address of a live change-of-address ``token``, or ``None``."""
    row = tokens.peek(models(), token, tokens.CHANGE_EMAIL)
    if row is None:
        return None
    user = _active_user(row.user_id)
    return None if user is None else (user, row.email)


def confirm_email_change(token: str) -> t.Any:
    """Move the user of ``token`` to the address it was sent to; commits.

    The old address is told, and every link sent to it stops working.

    :raises AccountError: for a token that is not live, or an address
        another account took meanwhile (``field="token"``).
    """
    row = tokens.redeem(models(), token, tokens.CHANGE_EMAIL)
    user = None if row is None else _active_user(row.user_id)
    if row is None or user is None:
        db.session.rollback()
        raise AccountError(INVALID_LINK, "token")
    if user_by_email(row.email) is not None:
        db.session.rollback()
        raise AccountError(EMAIL_TAKEN, "token")
    old = user.email
    user.email = row.email
    tokens.void(models(), user)  # links sent to the old address
    tokens.confirm_address(models(), user, row.email)
    db.session.commit()
    _send(old, "email_changed", user, new_email=row.email)
    return user
