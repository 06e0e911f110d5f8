"""The :class:`Api` object and the :class:`Resource` base class.

:data:`flaskstack.api` is an :class:`Api` that serves its resources under each
app's ``FLASKSTACK_API_PREFIX``. Like every flaskstack extension it holds no
app: resources can be added before ``flaskstack.init_app(app)`` (registered
when the app is set up) or after it, typically by the module the factory
imports once the app is set up (registered on every app set up but not yet
serving). A test suite creating an app per test gets every resource on each.

.. note:: A resource added after ``init_app`` goes to the app set up most
   recently, as long as it has not started serving requests (Flask refuses
   new URL rules then): the app whose factory is running. Apps set up later
   get every resource added so far.

Another :class:`Api` serves a blueprint, under the blueprint's
``url_prefix`` plus its own ``prefix``; errors under that prefix are problem
documents too. ``Api(app)`` on a plain app, as in Flask-RESTful, works after
``flaskstack.init_app(app)``.
"""

from __future__ import annotations

import functools
import typing as t
import weakref
from collections import OrderedDict

import flask_restful
from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response

from flaskstack._hooks import on_first_request
from flaskstack._routes import add_own_rule
from flaskstack._state import StackState, get_state
from flaskstack.forms import csrf
from flaskstack.health import public
from flaskstack.problems import is_api_request

from ._openapi import build_document
from ._output import output_json

if t.TYPE_CHECKING:
    from flask.blueprints import BlueprintSetupState

__all__ = ["Api", "Resource", "answer_options"]

OPENAPI_ENDPOINT = "flaskstack_openapi"
OPENAPI_SETTING = "FLASKSTACK_API_OPENAPI_PATH"


class Resource(flask_restful.Resource):  # type: ignore[misc]
    """A Flask-RESTful resource whose CSRF check runs after its authentication.

    Works like :class:`flask_restful.Resource` (``method_decorators`` as a
    list or a dict by method, ``representations``), with one difference in
    order: for a request that needs a CSRF token (cookie-authenticated, on an
    unsafe method), the token is checked *after* ``method_decorators`` ran
    and *before* the method. So an API client without credentials gets 401
    from :func:`~flaskstack.auth.auth_required` rather than a CSRF 400, while
    a browser session still cannot be ridden cross-site. Put
    ``auth_required`` in ``method_decorators`` for that order.
    """

    checks_csrf_in_dispatch: t.ClassVar[bool] = True

    def dispatch_request(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Call the method for the request's HTTP method, through the decorators."""
        method = getattr(self, request.method.lower(), None)
        if method is None and request.method == "HEAD":
            method = getattr(self, "get", None)
        if method is None:
            raise MethodNotAllowed(valid_methods=sorted(self.methods or ()))
        method = _csrf_checked(method)
        decorators = self.method_decorators
        if isinstance(decorators, t.Mapping):
            decorators = decorators.get(request.method.lower(), [])
        for decorator in decorators:
            method = decorator(method)
        value = method(*args, **kwargs)
        if isinstance(value, Response) or not self.representations:
            return value
        mediatype = request.accept_mimetypes.best_match(list(self.representations))
        if mediatype in self.representations:
            data, code, headers = flask_restful.unpack(value)
            response = self.representations[mediatype](data, code, headers)
            response.headers["Content-Type"] = mediatype
            return response
        return value


def _csrf_checked(method: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    @functools.wraps(method)
    def checked(*args: t.Any, **kwargs: t.Any) -> t.Any:
        csrf.protect_in_dispatch()
        return method(*args, **kwargs)

    return checked


_Registration = tuple[type[t.Any], tuple[str, ...], dict[str, t.Any]]


class Api(flask_restful.Api):  # type: ignore[misc]
    """A Flask-RESTful :class:`~flask_restful.Api` that keeps flaskstack's promises.

    - Every error under its prefix is ``application/problem+json``, and the
      app's own error handlers keep every other path.
    - Responses are JSON whatever the ``Accept`` header says, with
      datetimes, UUIDs and decimals written in their usual text forms.
    - It serves an OpenAPI 3.1 document of its resources at
      ``FLASKSTACK_API_OPENAPI_PATH`` under its prefix.

    :param app: A :class:`~flask.Blueprint` to serve the resources on, or
        an app already set up by :func:`flaskstack.init_app`; ``None`` for
        an API registered with :meth:`init_app` (the module-level
        :data:`flaskstack.api` is registered by ``flaskstack.init_app``).
    :param prefix: Prepended to every URL. ``None`` means
        ``FLASKSTACK_API_PREFIX`` on an app, nothing on a blueprint (whose
        ``url_prefix`` then counts).
    :param decorators: Applied to every resource's view function.
    """

    def __init__(
        self,
        app: Flask | Blueprint | None = None,
        *,
        prefix: str | None = None,
        decorators: list[t.Callable[..., t.Any]] | None = None,
    ) -> None:
        super().__init__(None, prefix="", decorators=decorators)
        self.representations = OrderedDict([("application/json", output_json)])
        self.prefix: str | None = prefix
        self.blueprint: Blueprint | None = None
        self.resources: list[_Registration] = []
        self._latest_app: weakref.ref[Flask] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask | Blueprint) -> None:
        """Serve the resources on ``app`` (set up by ``flaskstack.init_app``) or a blueprint."""
        if isinstance(app, Blueprint):
            self.blueprint = app
            for resource, urls, options in self.resources:
                self._register(app, self.prefix or "", resource, urls, options)
            app.record(self._on_blueprint_registered)
            return

        self.setup(app, get_state(app))

    def setup(self, app: Flask, state: StackState) -> None:
        """Register the resources and the OpenAPI document on ``app``, with its ``state``."""
        prefix = self.prefix if self.prefix is not None else app.config["FLASKSTACK_API_PREFIX"]
        _add_prefix(state, prefix)
        for resource, urls, options in self.resources:
            self._register(app, prefix, resource, urls, options)
        self._add_openapi(app, prefix, "", suffix=prefix.replace("/", "_"))
        self._latest_app = weakref.ref(app)
        # Once the app serves, Flask refuses new URL rules: from its first
        # request on, resources added later are for apps set up later.
        on_first_request(app, self._on_first_request)

    def _on_first_request(self, sender: Flask) -> None:
        if self._latest_app is not None and self._latest_app() is sender:
            self._latest_app = None

    def _on_blueprint_registered(self, setup: BlueprintSetupState) -> None:
        prefix = (setup.url_prefix or "") + (self.prefix or "")
        if not prefix:
            raise ValueError(
                f"the API on blueprint {setup.blueprint.name!r} has no URL prefix: give the "
                "blueprint a url_prefix (or the Api a prefix), so its error handling cannot "
                "take over the whole app"
            )
        app = t.cast("Flask", setup.app)
        try:
            state = get_state(app)
        except LookupError:
            raise LookupError(
                f"blueprint {setup.blueprint.name!r} carries a flaskstack API: register it after "
                "flaskstack.init_app(app)"
            ) from None
        _add_prefix(state, prefix)
        self._add_openapi(app, prefix, f"{setup.name_prefix}.{setup.name}".lstrip(".") + ".")

    def add_resource(self, resource: type[t.Any], *urls: str, **options: t.Any) -> None:
        """Serve ``resource`` at ``urls`` (below the prefix); options as in Flask-RESTful.

        ``endpoint`` defaults to the class name in lower case;
        ``resource_class_args`` and ``resource_class_kwargs`` go to the
        resource's constructor; other options go to ``add_url_rule``.
        """
        for url in urls:
            if not url.startswith("/"):
                raise ValueError(f"resource URL {url!r} must start with '/'")
        self.resources.append((resource, urls, options))
        if self.blueprint is not None:
            self._register(self.blueprint, self.prefix or "", resource, urls, options)
            return
        app = self._latest_app() if self._latest_app is not None else None
        if app is not None:
            prefix = self.prefix if self.prefix is not None else app.config["FLASKSTACK_API_PREFIX"]
            self._register(app, prefix, resource, urls, options)

    def add_app_resource(
        self, app: Flask, prefix: str, resource: type[t.Any], *urls: str, **options: t.Any
    ) -> None:
        """Serve ``resource`` on ``app`` alone, at ``urls`` under ``prefix``.

        For resources that belong to one app's set-up (flaskstack's account
        endpoints): they are not kept for the other apps this API serves.
        ``prefix`` is the whole prefix, the API's included.
        """
        self._register(app, prefix, resource, urls, options)

    def _register(
        self,
        target: Flask | Blueprint,
        prefix: str,
        resource: type[t.Any],
        urls: tuple[str, ...],
        options: dict[str, t.Any],
    ) -> None:
        options = dict(options)
        endpoint = options.pop("endpoint", None) or resource.__name__.lower()
        class_args = options.pop("resource_class_args", ())
        class_kwargs = options.pop("resource_class_kwargs", {})
        # Clients write "/articles/" and "/articles" alike: under the API prefix
        # both reach the resource, for every method, without a redirect (a 308
        # would keep the body, but many clients do not follow one for a POST).
        options.setdefault("strict_slashes", False)
        if isinstance(target, Flask) and endpoint in target.view_functions:
            taken_by = getattr(target.view_functions[endpoint], "view_class", None)
            if taken_by is resource:
                return  # already served on this app
            raise ValueError(
                f"endpoint {endpoint!r} of resource {resource.__name__} is already the "
                f"endpoint of {getattr(taken_by, '__name__', 'another view')}: pass "
                "endpoint='...' to add_resource"
            )
        resource.endpoint = endpoint
        view = self.output(resource.as_view(endpoint, *class_args, **class_kwargs))
        for decorator in self.decorators:
            view = decorator(view)
        for url in urls:
            target.add_url_rule(prefix + url, endpoint=endpoint, view_func=view, **options)
        self.endpoints.add(endpoint)

    def _add_openapi(self, app: Flask, prefix: str, endpoint_prefix: str, suffix: str = "") -> None:
        path = app.config["FLASKSTACK_API_OPENAPI_PATH"]
        if not path:
            return

        @public
        def openapi_document() -> Response:
            return jsonify(build_document(current_app, self, prefix, endpoint_prefix))

        endpoint = f"{endpoint_prefix}{OPENAPI_ENDPOINT}{suffix}"
        add_own_rule(app, prefix + path, endpoint, openapi_document, OPENAPI_SETTING)

    def owns(self, endpoint: str, endpoint_prefix: str = "") -> bool:
        """Whether ``endpoint`` (with the blueprint's ``endpoint_prefix``) is one of this API's."""
        return (
            endpoint.startswith(endpoint_prefix)
            and endpoint[len(endpoint_prefix) :] in self.endpoints
        )


def answer_options(response: Response) -> Response:
    """Flask's automatic answer to ``OPTIONS`` under an API prefix, made 204 without a body.

    Flask answers ``OPTIONS`` for every rule itself (``provide_automatic_options``)
    with 200, the ``Allow`` header and an empty ``text/html`` body; an API
    client gets the same ``Allow`` with ``204 No Content`` and no
    ``Content-Type``. A view or resource with its own ``options`` method, and
    pages outside the prefix, keep their answers.
    """
    if (
        request.method == "OPTIONS"
        and response.status_code == 200
        and getattr(request.url_rule, "provide_automatic_options", False)
        and not response.is_streamed
        and not response.get_data()
        and is_api_request()
    ):
        response.status_code = 204
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
    return response


def _add_prefix(state: StackState, prefix: str) -> None:
    if prefix not in state.api_prefixes:
        state.api_prefixes.append(prefix)
