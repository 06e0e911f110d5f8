"""Two-factor sign-in with TOTP: secrets, codes, recovery codes, the half-signed-in session.

On when :setting:`FLASKSTACK_TWO_FACTOR` is; then two models are made per
user model (:func:`two_factor_models`): the user's TOTP secret (table
``user_two_factor`` for the default ``User``, ``<user table>_two_factor``
otherwise) and their recovery codes (``user_recovery_codes`` or
``<user table>_recovery_codes``). Two-factor is on for a user once a first
code from their authenticator app confirmed the secret.

The rules this module keeps:

- A code works once: the time step it was made for is stored with the
  secret, and a code of that step or an earlier one is refused. The update
  that stores it only succeeds when the stored step is older, so two
  requests racing with one code cannot both win. Clocks may be one step
  (30 seconds) apart.
- Recovery codes are stored as SHA-256 digests (each holds 80 random bits,
  so a digest cannot be reversed by guessing) and are used up by an update
  that only succeeds on an unused code.
- Wrong codes are throttled per user and per client address
  (``FLASKSTACK_TWO_FACTOR_ACCOUNT_LIMIT``, ``FLASKSTACK_TWO_FACTOR_ADDRESS_LIMIT``,
  over ``FLASKSTACK_LOGIN_WINDOW``): 429 before any code is checked.
- A password sign-in of a user with two-factor on does not sign in: the
  session gets a new id and holds a *pending* sign-in (who, remember-me,
  where to go next, until when) under :data:`PENDING_KEY`; Flask-Login sees
  nobody, so every page and endpoint treats the client as anonymous until
  the second factor is given on the page that asks for it.
- Importing this module imports neither pyotp nor segno; an app with the
  feature off never imports it at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import time
import typing as t

import sqlalchemy as sa
from flask import current_app, request, session, url_for
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack._state import current_state
from flaskstack.database import db
from flaskstack.throttle import LoginThrottled, Throttle

from . import _models
from ._models import now, user_key

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

__all__ = [
    "PENDING_KEY",
    "CodesThrottled",
    "Pending",
    "TwoFactorModels",
    "second_factor_needed",
    "two_factor_models",
    "verify_second_factor",
]

PENDING_KEY = "_flaskstack_two_factor"
"""The session key of a sign-in that waits for its second factor."""

INTERVAL = 30
"""Seconds per TOTP time step (what authenticator apps use)."""

DIGITS = 6
"""Digits per TOTP code."""

_DRIFT = 1
"""Steps of clock difference accepted either way."""

_RECOVERY_CHARS = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 16  # 31**16: about 79 bits

_ACCOUNT_SCOPE = "two-factor-account"
_ADDRESS_SCOPE = "two-factor-address"


# -- models ----------------------------------------------------------------------------


class _SecretColumns:
    """A user's TOTP secret; two-factor is on once ``confirmed_at`` is set."""

    id: Mapped[int] = mapped_column(primary_key=True)
    secret: Mapped[str] = mapped_column(sa.String(64))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    """The time step of the last code accepted: it and earlier ones are refused."""
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )

    def __repr__(self) -> str:
        return f"<TwoFactor of user {self.user_id}>"  # type: ignore[attr-defined]


class _RecoveryCodeColumns:
    """A single-use recovery code of a user: only its SHA-256 is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} of user {self.user_id}>"  # type: ignore[attr-defined]


class TwoFactorModels(t.NamedTuple):
    """The two models of two-factor sign-in for one user model."""

    secret: type[t.Any]
    recovery_code: type[t.Any]


def two_factor_models(user_model: type[t.Any]) -> TwoFactorModels:
    """The two-factor models for ``user_model`` (made once per user model).

    For the default ``User`` the tables are ``user_two_factor`` and
    ``user_recovery_codes``; for another model ``<user table>_two_factor``
    and ``<user table>_recovery_codes``. The user model needs a
    single-column primary key.
    """
    secret = _models.rows_model_of(
        user_model,
        "TwoFactor",
        ("user_two_factor", "two_factor"),
        _SecretColumns,
        __table_args__=(sa.UniqueConstraint("user_id"),),
    )
    recovery = _models.rows_model_of(
        user_model, "RecoveryCode", ("user_recovery_codes", "recovery_codes"), _RecoveryCodeColumns
    )
    return TwoFactorModels(secret, recovery)


def _models_in_use() -> TwoFactorModels | None:
    return t.cast("TwoFactorModels | None", current_state().auth.two_factor)


def _on() -> TwoFactorModels:
    models = _models_in_use()
    if models is None:
        raise LookupError(
            "two-factor sign-in is off for this app: set FLASKSTACK_TWO_FACTOR = True "
            "(with pip install 'flaskstack[two-factor]')"
        )
    return models


# -- who has it ------------------------------------------------------------------------


def _record(user: t.Any) -> t.Any | None:
    model = _on().secret
    statement = sa.select(model).where(model.user_id == user_key(user))
    return db.session.execute(statement).scalar_one_or_none()


def is_enabled(user: t.Any) -> bool:
    """Whether ``user`` has two-factor sign-in on (a confirmed secret)."""
    if _models_in_use() is None:
        return False
    record = _record(user)
    return record is not None and record.confirmed_at is not None


def is_required(user: t.Any) -> bool:
    """Whether ``user`` must use two-factor (a role of ``FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES``)."""
    from ._roles import has_role

    roles = current_app.config["FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES"]
    return any(has_role(user, role) for role in roles)


def second_factor_needed(user: t.Any) -> bool:
    """Whether signing ``user`` in takes a second factor after the password.

    ``True`` when two-factor sign-in is on for the app and ``user`` has
    turned it on. An app that issues API tokens from a password (its own
    login endpoint) asks for a code when this is true and checks it with
    :func:`verify_second_factor` before issuing the token. Always ``False``
    with :setting:`FLASKSTACK_TWO_FACTOR` off.
    """
    return is_enabled(user)


def must_enrol(user: t.Any) -> bool:
    """Whether ``user`` has to set up two-factor before signing in (a required role, not on)."""
    return _models_in_use() is not None and not is_enabled(user) and is_required(user)


# -- codes -----------------------------------------------------------------------------


class CodesThrottled(LoginThrottled):
    """429: too many wrong two-factor codes for this account or from this client."""

    description = "Too many wrong codes. Wait a few minutes, then try again."


def _throttles(app: Flask) -> tuple[Throttle, Throttle]:
    config = app.config
    window = config["FLASKSTACK_LOGIN_WINDOW"]
    return (
        Throttle.for_app(
            app, _ACCOUNT_SCOPE, config["FLASKSTACK_TWO_FACTOR_ACCOUNT_LIMIT"], window
        ),
        Throttle.for_app(
            app, _ADDRESS_SCOPE, config["FLASKSTACK_TWO_FACTOR_ADDRESS_LIMIT"], window
        ),
    )


def _totp(secret: str) -> t.Any:
    import pyotp

    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)


def _clean(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _is_totp_shaped(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def _matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step within the drift whose code is ``code``, or ``None``."""
    import hmac

    totp = _totp(secret)
    current = int((time.time() if at is None else at) // INTERVAL)
    for step in range(current - _DRIFT, current + _DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _changed(result: t.Any) -> bool:
    """Whether an UPDATE changed one row (the race it settles was won)."""
    return bool(t.cast("sa.CursorResult[t.Any]", result).rowcount == 1)


def _use_step(record: t.Any, step: int) -> bool:
    """Store ``step`` as the last one used, only if it is newer; whether it was."""
    model = type(record)
    statement = (
        sa.update(model)
        .where(
            model.id == record.id,
            sa.or_(model.last_step.is_(None), model.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    used = _changed(db.session.execute(statement))
    db.session.commit()
    return used


def _check_totp(record: t.Any, code: str) -> bool:
    if not _is_totp_shaped(code):
        return False
    step = _matching_step(record.secret, code)
    return step is not None and _use_step(record, step)


def _digest(code: str) -> str:
    return hashlib.sha256(_clean(code).encode()).hexdigest()


def _use_recovery_code(user: t.Any, code: str) -> bool:
    cleaned = _clean(code)
    if len(cleaned) != _RECOVERY_LENGTH or not cleaned.isascii():
        return False
    model = _on().recovery_code
    statement = (
        sa.update(model)
        .where(
            model.user_id == user_key(user),
            model.code_hash == _digest(cleaned),
            model.used_at.is_(None),
        )
        .values(used_at=now())
        .execution_options(synchronize_session=False)
    )
    used = _changed(db.session.execute(statement))
    db.session.commit()
    return used


def _throttled(user: t.Any, check: t.Callable[[], bool]) -> bool:
    """Run ``check`` under the code throttles of ``user`` and of the client; count a failure.

    :raises CodesThrottled: before ``check`` when either is over its limit,
        or when this failure went over one.
    """
    account, address = _throttles(current_app._get_current_object())  # type: ignore[attr-defined]
    who = str(user_key(user))
    client = request.remote_addr or "unknown"
    CodesThrottled.raise_for(account.check(who), address.check(client))
    if check():
        account.reset(who)
        return True
    CodesThrottled.raise_for(account.hit(who), address.hit(client))
    return False


def verify_second_factor(
    user: t.Any, code: str | None = None, *, recovery_code: str | None = None
) -> bool:
    """Whether ``code`` (from the authenticator app) or ``recovery_code`` is right for ``user``.

    A right code is used up: the same code is refused afterwards, as is a
    used recovery code. With only ``code``, a value shaped like a recovery
    code is taken as one, so a single form field can take either. Wrong
    codes are counted per user and per client address. Commits the
    database session. Needs a request context; ``False`` when the user has
    no two-factor on.

    :raises flaskstack.throttle.LoginThrottled: (429, with ``Retry-After``)
        over a limit of wrong codes; nothing is checked then.
    """
    if _models_in_use() is None:
        return False
    record = _record(user)
    if record is None or record.confirmed_at is None:
        return False
    given = code if code is not None else recovery_code
    if given is None:
        return False
    cleaned = _clean(given)
    as_totp = recovery_code is None and _is_totp_shaped(cleaned)

    def check() -> bool:
        if as_totp:
            return _check_totp(record, cleaned)
        return _use_recovery_code(user, cleaned)

    return _throttled(user, check)


# -- enrolment -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Enrolment:
    """A secret waiting for its first code, and how to give it to an authenticator app."""

    secret: str
    uri: str

    def qr_svg(self) -> str:
        """The ``otpauth://`` URI as a QR code: an inline SVG element, black on transparent."""
        import segno

        code = segno.make(self.uri, error="m")
        svg: str = code.svg_inline(
            scale=4, title="QR code for your authenticator app", dark="#000", light="#fff"
        )
        return svg


def issuer() -> str:
    """The name authenticator apps show: ``FLASKSTACK_TWO_FACTOR_ISSUER`` or the app's name."""
    return str(current_app.config["FLASKSTACK_TWO_FACTOR_ISSUER"] or current_app.name)


def _account_name(user: t.Any) -> str:
    email = getattr(user, "email", None)
    return str(email) if email else str(user_key(user))


def enrolment(user: t.Any, *, new: bool = False) -> Enrolment:
    """The secret ``user`` is setting up: the one waiting, or a new one; commits.

    :param new: Replace a waiting secret with a new one.
    :raises ValueError: when two-factor is already on for ``user``.
    """
    record = _record(user)
    if record is not None and record.confirmed_at is not None:
        raise ValueError("Two-factor sign-in is already on for this account.")
    import pyotp

    if record is None:
        record = _on().secret(user_id=user_key(user), secret=pyotp.random_base32())
        db.session.add(record)
    elif new:
        record.secret = pyotp.random_base32()
        record.last_step = None
    db.session.commit()
    uri = _totp(record.secret).provisioning_uri(name=_account_name(user), issuer_name=issuer())
    return Enrolment(record.secret, uri)


def confirm(user: t.Any, code: str) -> list[str] | None:
    """Turn two-factor on with a first ``code`` for the waiting secret; the recovery codes.

    ``None`` (nothing changes) for a wrong code. The recovery codes are
    returned once, here; only their digests are stored. Commits.

    :raises ValueError: without a waiting secret (already on, or never started).
    :raises flaskstack.throttle.LoginThrottled: over a limit of wrong codes.
    """
    record = _record(user)
    if record is None or record.confirmed_at is not None:
        raise ValueError("There is no two-factor set-up waiting for a code: start it again.")
    if not _throttled(user, lambda: _check_totp(record, _clean(code))):
        return None
    record.confirmed_at = now()
    codes = _replace_recovery_codes(user)
    db.session.commit()
    return codes


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_CHARS) for _ in range(_RECOVERY_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4))


def _replace_recovery_codes(user: t.Any) -> list[str]:
    model = _on().recovery_code
    db.session.execute(
        sa.delete(model).where(model.user_id == user_key(user)),
        execution_options={"synchronize_session": False},
    )
    codes = [
        _new_recovery_code()
        for _ in range(current_app.config["FLASKSTACK_TWO_FACTOR_RECOVERY_CODES"])
    ]
    db.session.add_all(model(user_id=user_key(user), code_hash=_digest(code)) for code in codes)
    return codes


def regenerate_recovery_codes(user: t.Any) -> list[str]:
    """New recovery codes for ``user`` (the old ones stop working); commits.

    :raises ValueError: when two-factor is off for ``user``.
    """
    if not is_enabled(user):
        raise ValueError("Two-factor sign-in is off for this account: there are no recovery codes.")
    codes = _replace_recovery_codes(user)
    db.session.commit()
    return codes


def recovery_codes_left(user: t.Any) -> int:
    """How many unused recovery codes ``user`` has."""
    model = _on().recovery_code
    statement = (
        sa.select(sa.func.count())
        .select_from(model)
        .where(model.user_id == user_key(user), model.used_at.is_(None))
    )
    return int(db.session.execute(statement).scalar_one())


def disable(user: t.Any) -> bool:
    """Turn two-factor off for ``user``: secret and recovery codes deleted; commits.

    A security notice is mailed to the user when the app sends mail.
    :returns: Whether it was on.
    """
    models = _on()
    was_on = is_enabled(user)
    for model in models:
        db.session.execute(
            sa.delete(model).where(model.user_id == user_key(user)),
            execution_options={"synchronize_session": False},
        )
    db.session.commit()
    if was_on:
        _notify(user, "two_factor_disabled")
    return was_on


def _notify(user: t.Any, template: str) -> None:
    from flaskstack.mail import mail_configured

    email = getattr(user, "email", None)
    if not email or not mail_configured():
        return
    from ._accounts import _send

    _send(email, template, user)


def reauthenticated(user: t.Any, password: str | None, code: str | None) -> bool:
    """Whether ``user`` proved it is them again: the password, or a code (throttled)."""
    if password:
        from ._protocols import check_user_password

        # Wrong passwords count with the code throttles: guessing here costs the same.
        return _throttled(user, lambda: check_user_password(user, password))
    if code:
        return verify_second_factor(user, code)
    return False


# -- the half-signed-in session --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pending:
    """A sign-in waiting for its second factor (or, with ``enrol``, for two-factor set-up).

    :ivar user: The user whose password was right.
    :ivar remember: Whether they asked to be remembered.
    :ivar next: Where to go once signed in.
    :ivar enrol: Whether they must set up two-factor first (a required role).
    """

    user: t.Any
    remember: bool
    next: str
    enrol: bool


def due(user: t.Any) -> bool:
    """Whether signing ``user`` in waits for two-factor: a code to give, or the set-up first."""
    return is_enabled(user) or must_enrol(user)


def hold(user: t.Any, remember: bool, next_url: str) -> Response:
    """Hold the sign-in of ``user`` (password right, :func:`due`) in a session of a new id.

    The caller has signed out whoever this session belonged to. The answer
    is the redirect to the page asking for the code or, for a role that
    requires two-factor not set up yet, to the page setting it up.
    """
    from flask import redirect

    from flaskstack.sessions import rotate

    enrol = must_enrol(user)
    rotate()
    timeout = current_app.config["FLASKSTACK_TWO_FACTOR_PENDING_TIMEOUT"]
    session[PENDING_KEY] = {
        "user": user_key(user),
        "session": _fingerprint(user),
        "remember": bool(remember),
        "next": next_url,
        "enrol": enrol,
        "until": time.time() + timeout,
    }
    target = "flaskstack_two_factor.setup" if enrol else "flaskstack_two_factor.verify"
    return redirect(url_for(target))


def _fingerprint(user: t.Any) -> str:
    # The user's session id (session_token where it has one): a password changed
    # while the sign-in waits ends it.
    return hashlib.sha256(str(user.get_id()).encode()).hexdigest()[:32]


def pending() -> Pending | None:
    """The sign-in this session holds, if it is still good (not expired, user still active)."""
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None
    try:
        expired = float(data["until"]) < time.time()
        user = None if expired else db.session.get(current_state().auth.user_model, data["user"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        user = None
    if user is None or not user.is_active or data.get("session") != _fingerprint(user):
        session.pop(PENDING_KEY, None)
        return None
    return Pending(
        user, bool(data.get("remember")), str(data.get("next") or "/"), bool(data.get("enrol"))
    )


def release() -> None:
    """Forget the held sign-in (the caller signs its user in, or gives up)."""
    session.pop(PENDING_KEY, None)
