"""Authentication: users, passwords, sessions that rotate, API tokens.

Built on Flask-Login. Use :func:`login_user` and :func:`logout_user` from
here rather than Flask-Login's: logging in gives the session a new id
(session fixation) and logging out deletes the server-side session, so a
stolen cookie is dead afterwards. :func:`auth_required` protects a view for
session and API-token users alike.

Which ``LoginManager`` and which user model, decided at :func:`flaskstack.init_app`:

- The app registered its own ``flask_login.LoginManager`` before
  ``init_app``: flaskstack uses it as it is (its ``user_loader``,
  ``login_view``, ``login_message``, ``unauthorized_handler``, remember-me
  settings) and adds no user model, no token table and no auth pages.
- Otherwise flaskstack registers :data:`login_manager` with the model named
  by ``FLASKSTACK_USER_MODEL``, or, when unset (a new project), its default
  :class:`User` with its auth pages and API tokens.

A user model needs only what Flask-Login needs; each further feature states
the protocol it needs (:class:`PasswordChecker` or :class:`PasswordHashHolder`
for password checks and rehashing; :class:`EmailUser` as well for the auth
pages; a single-column primary key for API tokens and signed-in devices) and
is off, with a line in ``flask stack check``, for a model without it. Login
throttling keys on the identifier the user signs in with (stripped and
lower-cased) and the client address: the pages pass the email; an app's own
view passes what it uses (:func:`flaskstack.throttle.login_throttles`).

A second Flask-Login manager registered on the app after ``init_app``
(``LoginManager(app)``, ``flaskstack.login_manager.init_app(app)``) would
replace the one in effect: it is refused with
:class:`~flaskstack.errors.AlreadyInitialisedError` naming the line to remove,
at once where flaskstack can see it, else at the app's first request and by
``flask stack check`` (``auth.E001``).

Signed-in devices (flaskstack's manager and a single-column primary key):
each sign-in is a login of its device, which the session needs to stay
signed in; remember-me cookies are per device, stored hashed and replaced
at each use, so signing out makes a copied cookie worthless.
:func:`logins_of` lists a user's devices, :func:`revoke_login` signs one
out and :func:`revoke_logins` signs out everywhere (optionally keeping the
current device, optionally revoking API tokens too); the pages
``<FLASKSTACK_AUTH_URL_PREFIX>/sessions`` and the JSON endpoints
``<FLASKSTACK_API_PREFIX><FLASKSTACK_AUTH_API_PATH>/sessions`` do the same
for the signed-in user.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

from flask import abort, current_app
from flask_login import current_user

from flaskstack._hooks import on_first_request
from flaskstack._routes import clashes_with_existing
from flaskstack._state import EXTENSION_KEY, get_state
from flaskstack.errors import AlreadyInitialisedError, ConfigError, Problem
from flaskstack.rest._meta import describe, description

from . import _account_views, _sessions_views, _views
from ._account_tokens import AccountModels, account_models
from ._login import complete_sign_in, login_user, logout_user, sign_in_first
from ._logins import login_model, logins_of, revoke_login, revoke_logins
from ._manager import login_manager
from ._models import (
    UserMixin,
    answers_roles,
    default_user_clashes,
    default_user_model,
    normalise_email,
    resolve_user_model,
    token_model,
)
from ._passwords import PasswordPolicyError, verify_password
from ._protocols import (
    EmailUser,
    Features,
    PasswordChecker,
    PasswordHashHolder,
    PasswordSetter,
    features_of,
)
from ._roles import (
    Access,
    RoleHolder,
    RoleModels,
    access_of,
    create_role,
    delete_role,
    grant_role,
    has_permission,
    has_role,
    revoke_role,
    role_models,
    role_problems,
    set_permissions,
)
from ._tokens import create_token, request_token, revoke_token

if t.TYPE_CHECKING:
    from flask import Flask

    from flaskstack.config import Resolution

__all__ = [
    "Access",
    "AuthState",
    "EmailUser",
    "Features",
    "PasswordChecker",
    "PasswordHashHolder",
    "PasswordPolicyError",
    "PasswordSetter",
    "RoleHolder",
    "User",
    "UserMixin",
    "access_of",
    "auth_required",
    "complete_sign_in",
    "create_role",
    "create_token",
    "current_user",
    "delete_role",
    "grant_role",
    "has_permission",
    "has_role",
    "login_manager",
    "login_user",
    "logins_of",
    "logout_user",
    "normalise_email",
    "request_token",
    "revoke_login",
    "revoke_logins",
    "revoke_role",
    "revoke_token",
    "second_factor_needed",
    "set_permissions",
    "stored_tokens",
    "verify_password",
    "verify_second_factor",
]

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])


@dataclasses.dataclass(frozen=True)
class AuthState:
    """What auth uses for one app (``get_state(app).auth``).

    :ivar user_model: The user model, or ``None`` when the app brought its
        own ``LoginManager`` and set no ``FLASKSTACK_USER_MODEL``.
    :ivar api_token_model: The API token model, or ``None`` when API tokens are off.
    :ivar manager: The Flask-Login ``LoginManager`` in effect for the app.
    :ivar own_manager: Whether that manager is the app's own.
    :ivar pages: Whether flaskstack's auth pages are registered.
    :ivar features: What the user model supports (``None`` without a model).
    :ivar account_models: The models of the account flows (password reset,
        email confirmation and change), or ``None`` when the auth pages are off.
    :ivar login_model: The model of signed-in devices (logins), or ``None``
        when they are not tracked (the app's own manager, or a user model
        without a single-column primary key).
    :ivar role_models: The models of flaskstack's roles, or ``None`` when
        ``FLASKSTACK_ROLES`` is off.
    :ivar two_factor: The models of two-factor sign-in (TOTP secrets and
        recovery codes), or ``None`` when ``FLASKSTACK_TWO_FACTOR`` is off.
    :ivar identity_model: The model of identities at OpenID Connect
        providers linked to users, or ``None`` when
        ``FLASKSTACK_OIDC_PROVIDERS`` is empty.
    :ivar oidc: The identity providers and their clients, or ``None`` when
        ``FLASKSTACK_OIDC_PROVIDERS`` is empty.
    :ivar passkey_model: The model of users' passkeys, or ``None`` when
        ``FLASKSTACK_PASSKEYS`` is off.
    """

    user_model: type[t.Any] | None
    api_token_model: type[t.Any] | None
    manager: t.Any = None
    own_manager: bool = False
    pages: bool = False
    features: Features | None = None
    account_models: AccountModels | None = None
    login_model: type[t.Any] | None = None
    role_models: RoleModels | None = None
    two_factor: t.Any = None
    identity_model: type[t.Any] | None = None
    oidc: t.Any = None
    passkey_model: type[t.Any] | None = None

    @property
    def models(self) -> list[type[t.Any]]:
        """Every model auth uses for the app, the user model first (to create their tables)."""
        models = [self.user_model, self.api_token_model, self.login_model]
        if self.account_models is not None:
            models.extend(self.account_models)
        if self.role_models is not None:
            models.extend(self.role_models)
        if self.two_factor is not None:
            models.extend(self.two_factor)
        models.append(self.identity_model)
        models.append(self.passkey_model)
        return [model for model in models if model is not None]

    def access(self, user: t.Any) -> Access:
        """``user``'s roles and permissions in flaskstack's role tables (:func:`access_of`).

        :raises LookupError: when ``FLASKSTACK_ROLES`` is off.
        """
        return access_of(user)

    @property
    def token_model(self) -> type[t.Any]:
        """The API token model.

        :raises LookupError: when API tokens are off for the app.
        """
        if self.api_token_model is None:
            raise LookupError(
                "API tokens are off for this app: it uses its own LoginManager, or its user "
                "model has no single-column primary key (flask stack check says which)"
            )
        return self.api_token_model


def auth_required(
    view: _F | None = None,
    *,
    check: t.Callable[[t.Any], bool] | None = None,
    permission: str | None = None,
    roles: str | t.Iterable[str] = (),
    permissions: str | t.Iterable[str] = (),
) -> t.Any:
    """Require an authenticated user (session or API token) for ``view``.

    Without one, the client gets 401: ``application/problem+json`` with
    ``WWW-Authenticate`` for API and JSON clients, a redirect to the login
    page for browsers. A signed-in user who lacks what the view asks for
    gets 403 (a problem under the API, the 403 page in a browser):

    - ``roles``: at least one of these roles (:func:`has_role`);
    - ``permissions`` (or one ``permission``): every one of these
      permissions (:func:`has_permission`);
    - ``check``: ``check(current_user)`` is true.

    ::

        @auth_required(roles="editor")
        def drafts(): ...

        class Notes(rest.Resource):
            method_decorators = {"delete": [auth_required(permissions="notes.delete")]}

    Roles and permissions come from flaskstack's role tables
    (``FLASKSTACK_ROLES``) or from the user model's own ``has_role`` and
    ``has_permission`` (:class:`RoleHolder`); any number of checks in a
    request read the tables once. Usable on a view function, on a resource
    method, and as a ``method_decorators`` entry; the OpenAPI document marks
    the operations it protects, with the roles and permissions they need.
    """
    wanted_roles = _names("roles", roles)
    wanted_permissions = _names("permissions", permissions)
    if permission is not None:
        wanted_permissions += _names("permission", permission)
    access = {"roles": wanted_roles, "permissions": wanted_permissions}

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            refused = sign_in_first()
            if refused is not None:
                return refused
            user = current_user._get_current_object()
            if wanted_roles and not any(has_role(user, name) for name in wanted_roles):
                which = "the role" if len(wanted_roles) == 1 else "one of the roles"
                abort(403, description=_lacks(which, wanted_roles))
            lacking = [name for name in wanted_permissions if not has_permission(user, name)]
            if lacking:
                which = "the permission" if len(lacking) == 1 else "the permissions"
                abort(403, description=_lacks(which, lacking))
            if check is not None and not check(user):
                abort(403)
            return current_app.ensure_sync(function)(*args, **kwargs)

        return describe(t.cast("_F", wrapper), auth=True, access=access)

    decorate.__flaskstack_auth__ = True  # type: ignore[attr-defined]
    decorate.__flaskstack_access__ = access  # type: ignore[attr-defined]
    return decorate(view) if view is not None else decorate


auth_required.__flaskstack_auth__ = True  # type: ignore[attr-defined]


def _names(argument: str, names: str | t.Iterable[str]) -> tuple[str, ...]:
    found = (names,) if isinstance(names, str) else tuple(names)
    if not all(isinstance(name, str) and name for name in found):
        raise TypeError(
            f"auth_required({argument}=...) takes a name or names (non-empty strings), "
            f"not {names!r}"
        )
    return found


def _lacks(what: str, names: t.Sequence[str]) -> str:
    listed = ", ".join(repr(name) for name in names)
    return f"You are signed in, but this needs {what} {listed}, which your account lacks."


def _apps_own_manager(app: Flask) -> t.Any | None:
    """The Flask-Login manager the app registered itself, if any."""
    manager = getattr(app, "login_manager", None)
    if manager is login_manager:
        raise AlreadyInitialisedError(
            f"app {app.name!r} already has flaskstack.login_manager registered. "
            "flaskstack.init_app() registers it itself: remove "
            "flaskstack.login_manager.init_app(app) from the factory."
        )
    return manager


def _model_for(manager: t.Any | None, setting: object) -> type[t.Any] | None:
    # The default model only for an app that brought neither a model nor a manager.
    if setting is None and manager is not None:
        return None
    return resolve_user_model(setting)


def _pages_on(manager: t.Any | None, model: type[t.Any] | None, prefix: str | None) -> bool:
    return manager is None and model is not None and bool(prefix) and features_of(model).pages


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Check that the user model can be used and the auth pages shadow nothing of the app's."""
    manager = _apps_own_manager(app)
    setting = resolution["FLASKSTACK_USER_MODEL"]
    if setting is None and manager is None:
        clashes = default_user_clashes()
        if clashes:
            return clashes
    try:
        model = _model_for(manager, setting)
    except ConfigError as exc:
        return list(exc.problems)
    problems = role_problems(model) if resolution["FLASKSTACK_ROLES"] else []
    prefix = resolution["FLASKSTACK_AUTH_URL_PREFIX"]
    if resolution["FLASKSTACK_TWO_FACTOR"]:
        from . import _two_factor_views  # only when it is on: it costs nothing otherwise

        pages = _pages_on(manager, model, prefix)
        api_path = _account_api_prefix(resolution)
        problems.extend(_two_factor_views.prepare(app, resolution, model, pages, api_path))
    if resolution["FLASKSTACK_OIDC"] is False and resolution["FLASKSTACK_OIDC_PROVIDERS"]:
        problems.append(_oidc_off_problem(resolution))
    elif _oidc_on(resolution):
        from . import _oidc  # only when a provider is named: it costs nothing otherwise

        problems.extend(_oidc.prepare(app, resolution, model, _pages_on(manager, model, prefix)))
        api_path = _account_api_prefix(resolution)
        if api_path is not None:
            from . import _oidc_api

            for _resource, path, _endpoint in _oidc_api.PATHS:
                problems.extend(
                    clashes_with_existing(app, "FLASKSTACK_AUTH_API_PATH", api_path + path)
                )
    if resolution["FLASKSTACK_PASSKEYS"]:
        from . import _passkeys_views  # only when it is on: it costs nothing otherwise

        pages = _pages_on(manager, model, prefix)
        api_path = _account_api_prefix(resolution)
        problems.extend(_passkeys_views.prepare(app, resolution, model, pages, api_path))
    if not _pages_on(manager, model, prefix):
        return problems
    logins = features_of(t.cast("type[t.Any]", model)).tokens
    session_rules = _sessions_views.RULES if logins else ()
    for path, methods in (*_views.RULES, *_account_views.RULES, *session_rules):
        full = "/".join((prefix.rstrip("/"), path.lstrip("/")))
        problems.extend(clashes_with_existing(app, "FLASKSTACK_AUTH_URL_PREFIX", full, methods))
    api_path = _account_api_prefix(resolution)
    if api_path is not None and features_of(t.cast("type[t.Any]", model)).tokens:
        from . import _account_api

        for _resource, path, _endpoint in _account_api.PATHS:
            problems.extend(clashes_with_existing(app, "FLASKSTACK_AUTH_API_PATH", api_path + path))
    if api_path is not None and logins:
        from . import _sessions_api

        for _resource, path, _endpoint in _sessions_api.PATHS:
            problems.extend(clashes_with_existing(app, "FLASKSTACK_AUTH_API_PATH", api_path + path))
    problems.extend(_mail_problems(app, resolution, model))
    return problems


def _mail_problems(app: Flask, resolution: Resolution, model: t.Any) -> list[Problem]:
    """Production refuses account flows that mail links without a way to send mail."""
    if resolution.profile != "production" or not features_of(model).tokens:
        return []
    if resolution["MAIL_URL"] is not None or "mailman" in app.extensions:
        return []
    from flaskstack.mail import missing_mail_problem

    needs, off = [], []
    if resolution["FLASKSTACK_PASSWORD_RESET"]:
        needs.append("password reset")
        off.append("FLASKSTACK_PASSWORD_RESET = False")
    if resolution["FLASKSTACK_EMAIL_CONFIRMATION"] != "off":
        needs.append("email confirmation")
        off.append("FLASKSTACK_EMAIL_CONFIRMATION = 'off'")
    if not needs:
        return []
    problem = missing_mail_problem(" and ".join(needs))
    fix = problem.fix.rsplit("; or turn", 1)[0] + f"; or turn off what needs mail: {', '.join(off)}"
    return [dataclasses.replace(problem, fix=fix)]


def _oidc_on(config: t.Any) -> bool:
    """Whether sign-in with identity providers is on (``FLASKSTACK_OIDC``)."""
    setting = config["FLASKSTACK_OIDC"]
    return bool(config["FLASKSTACK_OIDC_PROVIDERS"]) if setting is None else bool(setting)


def _oidc_off_problem(resolution: Resolution) -> Problem:
    names = ", ".join(map(repr, resolution["FLASKSTACK_OIDC_PROVIDERS"]))
    return Problem(
        "oidc.E007",
        "FLASKSTACK_OIDC",
        f"False, and FLASKSTACK_OIDC_PROVIDERS names {names}",
        "one of them: FLASKSTACK_OIDC off, or providers to sign in with",
        "unset FLASKSTACK_OIDC_PROVIDERS to keep sign-in with providers off, or set "
        "FLASKSTACK_OIDC to True (or unset it)",
    )


def _account_api_prefix(config: t.Any) -> str | None:
    """Where the account endpoints go (API prefix and auth path), or ``None`` for nowhere."""
    from flaskstack.rest import api

    path = config["FLASKSTACK_AUTH_API_PATH"]
    if not path:
        return None
    prefix = api.prefix if api.prefix is not None else config["FLASKSTACK_API_PREFIX"]
    return str(prefix).rstrip("/") + str(path).rstrip("/")


def _init_app(app: Flask) -> AuthState:
    """Register Flask-Login on ``app``, or adopt the app's own manager."""
    manager = _apps_own_manager(app)
    model = _model_for(manager, app.config["FLASKSTACK_USER_MODEL"])
    features = None if model is None else features_of(model)
    on_first_request(app, _refuse_a_later_manager)
    roles = role_models(model) if model is not None and app.config["FLASKSTACK_ROLES"] else None
    if manager is not None:
        return AuthState(
            model, None, manager, own_manager=True, features=features, role_models=roles
        )
    # Without a manager of the app's there is always a model (_model_for).
    model, features = t.cast("type[t.Any]", model), t.cast("Features", features)
    login_manager.init_app(app)
    pages = _pages_on(None, model, app.config["FLASKSTACK_AUTH_URL_PREFIX"])
    if pages:
        _views.init_app(app)
    tokens = token_model(model) if features.tokens else None
    accounts = None
    if pages and features.tokens:
        accounts = account_models(model)
        api_path = _account_api_prefix(app.config)
        if api_path is not None:
            from . import _account_api

            _account_api.register(app, api_path)
    logins = login_model(model) if features.tokens else None
    if pages and logins is not None:
        _sessions_views.init_app(app)
        api_path = _account_api_prefix(app.config)
        if api_path is not None:
            from . import _sessions_api

            _sessions_api.register(app, api_path)
    two_factor = None
    if app.config["FLASKSTACK_TWO_FACTOR"]:  # _prepare refused it without pages and logins
        from . import _two_factor_views

        two_factor = _two_factor_views.init_app(app, model, _account_api_prefix(app.config))
    identities = oidc = None
    if _oidc_on(app.config):  # _prepare refused it without pages and logins
        from . import _oidc, _oidc_views

        identities = _oidc.identity_model(model)
        oidc = _oidc_views.init_app(app)
        api_path = _account_api_prefix(app.config)
        if api_path is not None:
            from . import _oidc_api

            _oidc_api.register(app, api_path)
    passkeys = None
    if app.config["FLASKSTACK_PASSKEYS"]:  # _prepare refused it without pages, logins, API path
        from . import _passkeys_views

        passkeys = _passkeys_views.init_app(app, model, _account_api_prefix(app.config))
    return AuthState(
        model,
        tokens,
        login_manager,
        pages=pages,
        features=features,
        account_models=accounts,
        login_model=logins,
        role_models=roles,
        two_factor=two_factor,
        identity_model=identities,
        oidc=oidc,
        passkey_model=passkeys,
    )


def _later_manager_message(app: Flask) -> str | None:
    """Why the app's Flask-Login manager is not the one ``init_app`` set up, if it is not."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        return None
    expected = state.auth.manager
    if getattr(app, "login_manager", None) is expected:
        return None
    which = "the app's own" if state.auth.own_manager else "flaskstack's"
    return (
        f"app {app.name!r} registered a second Flask-Login LoginManager after "
        f"flaskstack.init_app(app), replacing {which}: remove that LoginManager(app) or "
        "login_manager.init_app(app) line from the factory. To use a LoginManager of the "
        "app's own, register it before calling flaskstack.init_app(app)."
    )


def _refuse_a_later_manager(app: Flask) -> None:
    message = _later_manager_message(app)
    if message is not None:
        raise AlreadyInitialisedError(message)


def _check_findings(app: Flask) -> list[tuple[str, str]]:
    """``(check id, message)`` for ``flask stack check``: what auth has off, and why."""
    findings = []
    message = _later_manager_message(app)
    if message is not None:
        findings.append(("auth.E001", message))
    auth = get_state(app).auth
    asked = _roles_asked(app)
    if asked and not answers_roles(
        auth.user_model, auth.role_models is not None, ("has_role", "has_permission")
    ):
        findings.append(
            (
                "auth.E011",
                f"{asked} asks for roles or permissions (auth_required(roles=, permissions=)), "
                "and this app cannot say which a user holds: set FLASKSTACK_ROLES = True, or "
                "give the user model has_role(name) and has_permission(name) methods.",
            )
        )
    if auth.own_manager:
        findings.append(
            (
                "auth.I004",
                "The app uses its own Flask-Login LoginManager: flaskstack adds no user model, "
                "no auth pages and no API tokens.",
            )
        )
    if auth.features is None or auth.user_model is None:
        return findings
    name = f"{auth.user_model.__module__}.{auth.user_model.__qualname__}"
    missing = auth.features.missing
    if "pages" in missing and not auth.own_manager and app.config["FLASKSTACK_AUTH_URL_PREFIX"]:
        findings.append(
            (
                "auth.I001",
                f"The auth pages are off: the user model {name} lacks {missing['pages']}.",
            )
        )
    if "tokens" in missing and not auth.own_manager:
        findings.append(
            ("auth.I002", f"API tokens are off: the user model {name} lacks {missing['tokens']}.")
        )
    if "tokens" in missing and not auth.own_manager:
        findings.append(
            (
                "auth.I005",
                f"Signed-in devices are not tracked: the user model {name} lacks "
                f"{missing['tokens']}. Remember-me cookies hold the user's id, and signing out "
                "does not revoke a copied one.",
            )
        )
    if "passwords" in missing:
        findings.append(
            (
                "auth.I003",
                f"Password checks are off: the user model {name} lacks {missing['passwords']}.",
            )
        )
    if auth.two_factor is not None:
        from ._two_factor_views import check_findings

        findings.extend(check_findings(app))
    return findings


def second_factor_needed(user: t.Any) -> bool:
    """Whether signing ``user`` in takes a code after the password (two-factor is on for them).

    For an app that issues API tokens from a password in a login endpoint
    of its own: when this is true, ask for a code and check it with
    :func:`verify_second_factor` before issuing the token. Always ``False``
    while ``FLASKSTACK_TWO_FACTOR`` is off. Needs an app context.
    """
    if get_state(current_app).auth.two_factor is None:
        return False
    from . import _two_factor

    return _two_factor.second_factor_needed(user)


def verify_second_factor(
    user: t.Any, code: str | None = None, *, recovery_code: str | None = None
) -> bool:
    """Whether ``code`` (from the user's authenticator app) or ``recovery_code`` is right.

    A right code is used up (the same code is refused afterwards); a value
    of ``code`` shaped like a recovery code is taken as one. Wrong codes are
    throttled per user and per client address. Commits the database
    session; needs a request context. ``False`` when two-factor is off for
    the app or the user.

    :raises flaskstack.throttle.LoginThrottled: (429 with ``Retry-After``)
        over the limit of wrong codes (``FLASKSTACK_TWO_FACTOR_ACCOUNT_LIMIT``,
        ``FLASKSTACK_TWO_FACTOR_ADDRESS_LIMIT``); nothing is checked then.
    """
    if get_state(current_app).auth.two_factor is None:
        return False
    from . import _two_factor

    return _two_factor.verify_second_factor(user, code, recovery_code=recovery_code)


def stored_tokens(identity: t.Any) -> dict[str, t.Any] | None:
    """The identity provider's tokens stored with ``identity``, decrypted.

    ``identity`` is a row of the linked identities
    (``get_state(app).auth.identity_model``). Tokens are stored only with
    ``FLASKSTACK_OIDC_STORE_TOKENS``, encrypted with a key derived from
    ``SECRET_KEY``, and replaced at each sign-in with that provider;
    ``None`` when there are none, or when they were sealed under another
    ``SECRET_KEY``.
    """
    from . import _oidc

    return _oidc.stored_tokens(identity)


def _roles_asked(app: Flask) -> str | None:
    """The first view (endpoint) of ``app`` whose ``auth_required`` asks for roles, if any."""
    for endpoint, view in app.view_functions.items():
        functions: list[t.Any] = [view]
        view_class = getattr(view, "view_class", None)
        if view_class is not None:
            decorators = getattr(view_class, "method_decorators", [])
            if isinstance(decorators, t.Mapping):
                decorators = [d for listed in decorators.values() for d in listed]
            functions.extend(decorators)
            functions.extend(getattr(view_class, method, None) for method in _METHODS)
        for function in functions:
            access = getattr(function, "__flaskstack_access__", None)
            access = access or description(function).get("access")
            if access and (access["roles"] or access["permissions"]):
                return f"the endpoint {endpoint!r}"
    return None


_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def __getattr__(name: str) -> t.Any:
    # ``User``, flaskstack's default model, is declared when first asked for.
    if name == "User":
        return default_user_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
