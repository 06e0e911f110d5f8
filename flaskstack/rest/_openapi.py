"""The OpenAPI 3.1 document of an :class:`~flaskstack.rest.Api`, built from what is registered.

Each URL rule of a resource becomes a path (``/api/notes/<int:note_id>`` →
``/api/notes/{note_id}``, typed by its converter), each method an operation:

- summary and description from the method's docstring, tagged with the
  resource's name;
- the request body from :func:`~flaskstack.rest.body`, query parameters from
  :func:`~flaskstack.rest.query` and :func:`~flaskstack.rest.paginated`;
- the success response from :func:`~flaskstack.rest.marshal_with` or
  :func:`~flaskstack.rest.paginated`;
- security from :func:`~flaskstack.auth.auth_required` (on the method or in
  ``method_decorators``): an API token in the ``Authorization`` header, or
  the session cookie with the ``X-CSRFToken`` header on unsafe methods;
- the success response's headers (``ETag`` with :func:`~flaskstack.rest.etag`,
  and its 304; ``Link`` and ``X-Total-Count`` with pagination);
- every error flaskstack itself can answer for the operation, by status, as
  an :rfc:`9457` problem document (the ``Problem`` component, its
  ``status`` fixed) with the headers the server sends (``WWW-Authenticate``
  on 401, ``Retry-After`` on 429 and 503); ``default`` for the statuses the
  resource's own code chooses (:func:`~flaskstack.rest.abort`).
"""

from __future__ import annotations

import inspect
import itertools
import re
import typing as t

from ._inputs import INT64_MAX
from ._legacy_fields import _json_schema as fields_schema
from ._meta import description
from ._pagination import MAX_PAGE

if t.TYPE_CHECKING:
    from flask import Flask

    from ._fields import Mode
    from ._inputs import Schema
    from ._resources import Api

# Marks a schema's output component until the document is complete (see _Builder.finish).
_DUMP = "\x00out"

__all__ = ["build_document"]

OPENAPI_VERSION = "3.1.0"

_RULE_VARIABLE = re.compile(
    r"<(?:(?P<converter>[a-zA-Z_]\w*)(?:\((?P<args>.*?)\))?:)?(?P<name>\w+)>"
)

_CONVERTER_SCHEMAS: dict[str, dict[str, t.Any]] = {
    # flaskstack's ``int`` converter stops at the 64-bit maximum (see flaskstack._ids).
    "int": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string"},
    "string": {"type": "string"},
    "default": {"type": "string"},
}

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_UNSAFE = {"post", "put", "patch", "delete"}

PROBLEM_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "description": (
        "An RFC 9457 problem document, as flaskstack.problems.problem writes it. "
        "Extension members may follow."
    ),
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "default": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {
            "type": "string",
            "description": "The request's id, also in the X-Request-ID header and the logs.",
        },
        "errors": {
            "type": "object",
            "description": "Messages by field or parameter, for invalid input.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "error": {
            "type": "string",
            "description": "For a refused API token, the RFC 6750 error code (invalid_token).",
        },
    },
    "required": ["type", "title", "status", "detail"],
}

# The errors flaskstack itself answers, by status; each operation lists those
# its declarations make possible (see _Builder.responses).
_ERRORS = {
    "400": (
        "The request is malformed: a body that does not parse as its media type, or a "
        "failed CSRF check (a cookie-authenticated unsafe request without `X-CSRFToken`)."
    ),
    "401": (
        "Authentication is required: no credentials, or an API token that is wrong, "
        "expired or revoked (`error` is then `invalid_token`)."
    ),
    "403": "The authenticated user may not do this.",
    "404": "Nothing matches the path's parameters.",
    "409": "The request conflicts with what exists (a duplicate, or a change made meanwhile).",
    "413": (
        "The body, or an uploaded file, is larger than the server accepts "
        "(MAX_CONTENT_LENGTH, or the file field's limit)."
    ),
    "415": "The body is not of a media type the operation accepts (see requestBody).",
    "422": "A value in the body or the query string is invalid; see `errors`.",
    "429": "Too many requests (FLASKSTACK_RATE_LIMITS); retry after `Retry-After` seconds.",
    "500": "An internal error; the problem carries the request id to quote.",
    "503": (
        "The database or the session store cannot be reached right now; "
        "retry after `Retry-After` seconds."
    ),
}

_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_WWW_AUTHENTICATE = {
    "description": "The challenge: token scheme, realm and, for a refused token, the error.",
    "required": True,
    "schema": {"type": "string"},
}
_ETAG = {
    "description": "The representation's entity tag, for If-None-Match.",
    "required": True,
    "schema": {"type": "string"},
}
_ERROR_HEADERS: dict[str, dict[str, t.Any]] = {
    "401": {"WWW-Authenticate": _WWW_AUTHENTICATE},
    "429": {"Retry-After": _RETRY_AFTER},
    "503": {"Retry-After": _RETRY_AFTER},
}


def _forbidden(role_sets: list[tuple[str, ...]], permissions: t.Sequence[str]) -> str:
    """The 403 response's description for an operation that needs roles or permissions."""
    needs = [
        f"the role {roles[0]!r}"
        if len(roles) == 1
        else f"one of the roles {', '.join(map(repr, roles))}"
        for roles in role_sets
    ]
    if permissions:
        which = "the permission" if len(permissions) == 1 else "the permissions"
        needs.append(f"{which} {', '.join(map(repr, permissions))}")
    return f"The authenticated user lacks what this needs: {' and '.join(needs)}."


def _problem(status: str, description: str | None = None) -> dict[str, t.Any]:
    """The response object of an error ``status`` (``"default"``: any other)."""
    schema: dict[str, t.Any] = {"$ref": "#/components/schemas/Problem"}
    if status != "default":
        # The problem's `status` member repeats the HTTP status.
        schema = {"allOf": [schema, {"properties": {"status": {"const": int(status)}}}]}
    response: dict[str, t.Any] = {
        "description": description or _ERRORS[status],
        "content": {"application/problem+json": {"schema": schema}},
    }
    if status in _ERROR_HEADERS:
        response["headers"] = dict(_ERROR_HEADERS[status])
    return response


class _Builder:
    def __init__(self, app: Flask, api: Api, prefix: str, endpoint_prefix: str) -> None:
        self.app = app
        self.api = api
        self.prefix = prefix
        self.endpoint_prefix = endpoint_prefix
        self.schemas: dict[str, dict[str, t.Any]] = {"Problem": PROBLEM_SCHEMA}
        self.schema_classes: dict[str, type[Schema]] = {}
        self.operation_ids: set[str] = set()

    def document(self) -> dict[str, t.Any]:
        config = self.app.config
        paths: dict[str, dict[str, t.Any]] = {}
        for rule in sorted(self.app.url_map.iter_rules(), key=lambda r: r.rule):
            if not self.api.owns(rule.endpoint, self.endpoint_prefix):
                continue
            view = self.app.view_functions[rule.endpoint]
            resource = getattr(view, "view_class", None)
            if resource is None:
                continue
            path, parameters = _path(rule.rule)
            item = paths.setdefault(path, {})
            if parameters:
                item["parameters"] = parameters
            for method in _METHODS:
                function = getattr(resource, method, None)
                if function is None or method.upper() not in (rule.methods or ()):
                    continue
                item[method] = self.operation(resource, method, function, bool(parameters))
        document = {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": config["FLASKSTACK_API_TITLE"] or self.app.name,
                "version": config["FLASKSTACK_API_VERSION"],
            },
            "paths": paths,
            "components": {"schemas": self.schemas, "securitySchemes": self.security_schemes()},
        }
        return self.finish(document)

    def security_schemes(self) -> dict[str, t.Any]:
        schemes: dict[str, t.Any] = {}
        for scheme in self.app.config["FLASKSTACK_API_TOKEN_SCHEMES"]:
            if scheme.lower() == "bearer":
                schemes["bearerToken"] = {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token: `Authorization: Bearer <token>`.",
                }
            else:
                schemes[f"{scheme.lower()}Token"] = {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": f"An API token: `Authorization: {scheme} <token>`.",
                }
        schemes["sessionCookie"] = {
            "type": "apiKey",
            "in": "cookie",
            "name": self.app.config["SESSION_COOKIE_NAME"],
            "description": (
                "The session of a signed-in browser. Unsafe methods also need the "
                "`X-CSRFToken` header, from `GET /csrf-token`."
            ),
        }
        return schemes

    def operation(
        self, resource: type[t.Any], method: str, function: t.Any, in_path: bool = False
    ) -> dict[str, t.Any]:
        """The operation ``method`` of ``resource``; ``in_path``: its path has parameters."""
        notes = description(function)
        operation: dict[str, t.Any] = {
            "operationId": self.operation_id(resource, method),
            "tags": [resource.__name__],
        }
        doc = inspect.getdoc(function)
        if doc:
            summary, _, rest = doc.partition("\n")
            operation["summary"] = summary.strip()
            if rest.strip():
                operation["description"] = rest.strip()
        parameters = self.parameters(notes)
        if parameters:
            operation["parameters"] = parameters
        if "body" in notes:
            operation["requestBody"] = {"required": True, "content": self.body(notes["body"])}
        auth = self.requires_auth(resource, method, notes)
        operation["responses"] = self.responses(method, notes, in_path=in_path, auth=auth)
        if auth:
            role_sets, permissions = self.access(resource, method, notes)
            # Requirement objects are alternatives, and every name in one is needed: one
            # object per way of holding one role of each set, each with every permission.
            needs = [[*roles, *permissions] for roles in itertools.product(*role_sets)]
            operation["security"] = [
                {name: names} for name in self.security_schemes() for names in needs
            ]
            if role_sets or permissions:
                operation["x-flaskstack-access"] = {
                    "roles": [list(roles) for roles in role_sets],
                    "permissions": list(permissions),
                }
                operation["responses"]["403"] = {
                    **operation["responses"]["403"],
                    "description": _forbidden(role_sets, permissions),
                }
        return operation

    def access(
        self, resource: type[t.Any], method: str, notes: dict[str, t.Any]
    ) -> tuple[list[tuple[str, ...]], tuple[str, ...]]:
        """What ``auth_required`` asks of the operation: sets of roles (one of each) and
        permissions (all)."""
        found = [notes["access"]] if "access" in notes else []
        decorators = getattr(resource, "method_decorators", [])
        if isinstance(decorators, t.Mapping):
            decorators = decorators.get(method, [])
        found.extend(
            decorator.__flaskstack_access__
            for decorator in decorators
            if getattr(decorator, "__flaskstack_access__", None) is not None
        )
        role_sets = [access["roles"] for access in found if access["roles"]]
        permissions: list[str] = []
        for access in found:
            permissions.extend(name for name in access["permissions"] if name not in permissions)
        return role_sets, tuple(permissions)

    def operation_id(self, resource: type[t.Any], method: str) -> str:
        base = f"{resource.__name__}_{method}"
        candidate, number = base, 2
        while candidate in self.operation_ids:
            candidate, number = f"{base}_{number}", number + 1
        self.operation_ids.add(candidate)
        return candidate

    def parameters(self, notes: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        parameters: list[dict[str, t.Any]] = []
        if notes.get("paginated"):
            cap = self.app.config["FLASKSTACK_API_MAX_PER_PAGE"]
            for name, text in (
                ("page", f"The page, from 1 to {MAX_PAGE}."),
                ("per_page", f"Items per page; more than {cap} is answered with {cap}."),
            ):
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "description": text,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            # A larger per_page is capped, not refused: no maximum.
                            **({} if name == "per_page" else {"maximum": MAX_PAGE}),
                        },
                    }
                )
        schema: type[Schema] | None = notes.get("query")
        if schema is not None:
            for name, field in schema.fields.items():
                if field.dump_only:
                    continue
                field_schema = field.json_schema()
                parameter = {
                    "name": name,
                    "in": "query",
                    "required": field.required,
                    "schema": field_schema,
                }
                if field_schema.get("type") == "array":
                    parameter["explode"] = True
                if field.description:
                    parameter["description"] = field.description
                parameters.append(parameter)
        return parameters

    def responses(
        self, method: str, notes: dict[str, t.Any], *, in_path: bool = False, auth: bool = False
    ) -> dict[str, t.Any]:
        """The success response, then every error flaskstack can answer for this operation.

        Each error is listed where the operation's declarations make it
        possible: 400 for a body that does not parse (and for the CSRF check
        of an unsafe method), 401 and 403 with authentication, 404 with path
        parameters (the app's ``get_or_404``; a path id no column can hold),
        413 and 415 with a body, 422 with a body, a query or pagination; 429
        (with ``Retry-After``) when rate limits are on or the operation is
        throttled (``describe(view, throttled=True)``); the statuses a view
        declares it answers (``describe(view, statuses=("401",))``); 500 and 503 (with
        ``Retry-After``) everywhere.
        ``default`` stands for the statuses the app's own code chooses
        (``rest.abort(409)``).
        """
        status = notes.get("status") or ("200" if notes.get("output") is not None else "2XX")
        success: dict[str, t.Any] = {"description": "Success."}
        output = notes.get("output")
        if notes.get("paginated"):
            items = self.output_schema(output) if output is not None else {}
            success["content"] = {"application/json": {"schema": _page_schema(items)}}
            success["headers"] = {
                "Link": {
                    "description": "first, prev, next, last pages.",
                    "schema": {"type": "string"},
                },
                "X-Total-Count": {
                    "description": "Items on all pages.",
                    "schema": {"type": "integer"},
                },
            }
        elif output is not None:
            schema = self.output_schema(output)
            if notes.get("envelope"):
                schema = {"type": "object", "properties": {notes["envelope"]: schema}}
            success["content"] = {"application/json": {"schema": schema}}
        responses: dict[str, t.Any] = {str(status): success}
        if notes.get("etag"):
            success.setdefault("headers", {})["ETag"] = _ETAG
            responses["304"] = {
                "description": "Not modified since the ETag in If-None-Match (no body).",
                "headers": {"ETag": _ETAG},
            }
        body = "body" in notes
        if body or method in _UNSAFE:
            responses["400"] = _problem("400")
        if auth:
            responses["401"] = _problem("401")
            responses["403"] = _problem("403")
        if in_path:
            responses["404"] = _problem("404")
        if body:
            for error in ("413", "415"):
                responses[error] = _problem(error)
        if body or "query" in notes or notes.get("paginated"):
            responses["422"] = _problem("422")
        if self.app.config.get("FLASKSTACK_RATE_LIMITS") or notes.get("throttled"):
            responses["429"] = _problem("429")  # a declared limit or the API's default
        for code in notes.get("statuses", ()):  # what the view itself answers
            responses.setdefault(code, _problem(code))
        responses["500"] = _problem("500")
        responses["503"] = _problem("503")
        responses["default"] = _problem(
            "default", "Any other error, as the resource answers it (rest.abort)."
        )
        return responses

    def requires_auth(self, resource: type[t.Any], method: str, notes: dict[str, t.Any]) -> bool:
        if notes.get("auth"):
            return True
        decorators = getattr(resource, "method_decorators", [])
        if isinstance(decorators, t.Mapping):
            decorators = decorators.get(method, [])
        return any(getattr(decorator, "__flaskstack_auth__", False) for decorator in decorators)

    def schema_ref(self, schema: type[Schema], mode: Mode = "load") -> dict[str, t.Any]:
        """A reference to ``schema``'s component for requests (``"load"``) or responses."""
        name = schema.schema_name()
        known = self.schema_classes.get(name)
        if known is not None and known is not schema:
            name = f"{schema.__module__}.{schema.__qualname__}".replace(".", "_")
        self.schema_classes[name] = schema
        key = name if mode == "load" else name + _DUMP
        if key not in self.schemas:
            self.schemas[key] = {}  # placeholder: a schema may refer to itself
            unknown = self.app.config.get("FLASKSTACK_API_UNKNOWN_FIELDS", "ignore")
            self.schemas[key] = schema.json_schema(mode, self._ref, unknown=unknown)
        return {"$ref": f"#/components/schemas/{key}"}

    def _ref(self, schema: type[Schema], mode: Mode) -> str:
        ref: str = self.schema_ref(schema, mode)["$ref"]
        return ref

    def output_schema(self, output: t.Any) -> dict[str, t.Any]:
        """The response schema of a ``Schema`` class, or of a (deprecated) dict of fields."""
        if isinstance(output, t.Mapping):
            return fields_schema(output)
        return self.schema_ref(output, "dump")

    def body(self, schema: type[Schema]) -> dict[str, t.Any]:
        """The request body's content: JSON, or ``multipart/form-data`` for a schema with files."""
        from ._fields import File

        if not schema.has_files():
            return {"application/json": {"schema": self.schema_ref(schema)}}
        encoding = {
            name: {"contentType": ", ".join(field.content_types)}
            for name, field in schema.fields.items()
            if isinstance(field, File) and field.content_types
        }
        media: dict[str, t.Any] = {"schema": self.schema_ref(schema)}
        if encoding:
            media["encoding"] = encoding
        return {"multipart/form-data": media}

    def finish(self, document: dict[str, t.Any]) -> dict[str, t.Any]:
        """Name the output components: ``X``, and ``XInput`` for the request form of a schema
        that is used both ways (the two differ: read-only and write-only fields, defaults)."""
        renames: dict[str, str] = {}
        for key in [key for key in self.schemas if key.endswith(_DUMP)]:
            name = key.removesuffix(_DUMP)
            output = self.schemas.pop(key)
            if name in self.schemas:
                renamed = name + "Input"
                while renamed in self.schemas or renamed + _DUMP in self.schemas:
                    renamed += "_"
                self.schemas[renamed] = self.schemas.pop(name)
                renames[name] = renamed
            self.schemas[name] = output
            renames[key] = name
        if renames:
            prefix = "#/components/schemas/"
            _rewrite_refs(document, {prefix + old: prefix + new for old, new in renames.items()})
        return document


def _rewrite_refs(node: t.Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in refs:
            node["$ref"] = refs[ref]
        for value in node.values():
            _rewrite_refs(value, refs)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, refs)


def _page_schema(items: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": items},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 1},
        },
        "required": ["items", "page", "per_page", "total", "pages"],
    }


def _path(rule: str) -> tuple[str, list[dict[str, t.Any]]]:
    parameters: list[dict[str, t.Any]] = []

    def replace(match: re.Match[str]) -> str:
        converter = match.group("converter") or "default"
        schema = dict(_CONVERTER_SCHEMAS.get(converter, {"type": "string"}))
        if converter == "any" and match.group("args"):
            schema["enum"] = [a.strip().strip("'\"") for a in match.group("args").split(",")]
        parameters.append(
            {"name": match.group("name"), "in": "path", "required": True, "schema": schema}
        )
        return "{" + match.group("name") + "}"

    return _RULE_VARIABLE.sub(replace, rule), parameters


def build_document(
    app: Flask, api: Api, prefix: str, endpoint_prefix: str = ""
) -> dict[str, t.Any]:
    """The OpenAPI 3.1 document of ``api``'s resources on ``app``.

    :param prefix: The URL prefix the API is served under on ``app``.
    :param endpoint_prefix: ``"<blueprint>."`` for an API on a blueprint.
    """
    return _Builder(app, api, prefix, endpoint_prefix).document()
