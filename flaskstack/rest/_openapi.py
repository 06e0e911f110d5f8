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
- error responses as :rfc:`9457` problem documents.
"""

from __future__ import annotations

import inspect
import re
import typing as t

from ._inputs import INT64_MAX
from ._meta import description
from ._pagination import MAX_PAGE
from .fields import _json_schema as output_schema

if t.TYPE_CHECKING:
    from flask import Flask

    from ._inputs import Schema
    from ._resources import Api

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
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Messages by field, for invalid input.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status"],
}

_ERRORS = {
    "400": "The request is malformed: bad JSON or query parameters.",
    "401": "Authentication is required.",
    "403": "The authenticated user may not do this.",
    "415": "The body is not JSON.",
    "422": "The body is valid JSON with invalid content; see `errors`.",
}


def _problem(description: str) -> dict[str, t.Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


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
                item[method] = self.operation(resource, method, function)
        return {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": config["FLASKSTACK_API_TITLE"] or self.app.name,
                "version": config["FLASKSTACK_API_VERSION"],
            },
            "paths": paths,
            "components": {"schemas": self.schemas, "securitySchemes": self.security_schemes()},
        }

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

    def operation(self, resource: type[t.Any], method: str, function: t.Any) -> dict[str, t.Any]:
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
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.schema_ref(notes["body"])}},
            }
        operation["responses"] = self.responses(method, notes)
        if self.requires_auth(resource, method, notes):
            operation["security"] = [{name: []} for name in self.security_schemes()]
            operation["responses"]["401"] = _problem(_ERRORS["401"])
            operation["responses"]["403"] = _problem(_ERRORS["403"])
        return operation

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

    def responses(self, method: str, notes: dict[str, t.Any]) -> dict[str, t.Any]:
        status = notes.get("status") or ("200" if notes.get("output") is not None else "2XX")
        success: dict[str, t.Any] = {"description": "Success."}
        output = notes.get("output")
        if notes.get("paginated"):
            items = output_schema(output) if output is not None else {}
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
            schema = output_schema(output)
            if notes.get("envelope"):
                schema = {"type": "object", "properties": {notes["envelope"]: schema}}
            success["content"] = {"application/json": {"schema": schema}}
        responses: dict[str, t.Any] = {str(status): success}
        if notes.get("etag"):
            responses["304"] = {"description": "Not modified since the ETag in If-None-Match."}
        if "body" in notes or "query" in notes or notes.get("paginated"):
            responses["400"] = _problem(_ERRORS["400"])
        if "body" in notes:
            responses["415"] = _problem(_ERRORS["415"])
            responses["422"] = _problem(_ERRORS["422"])
        responses["default"] = _problem("An error.")
        return responses

    def requires_auth(self, resource: type[t.Any], method: str, notes: dict[str, t.Any]) -> bool:
        if notes.get("auth"):
            return True
        decorators = getattr(resource, "method_decorators", [])
        if isinstance(decorators, t.Mapping):
            decorators = decorators.get(method, [])
        return any(getattr(decorator, "__flaskstack_auth__", False) for decorator in decorators)

    def schema_ref(self, schema: type[Schema]) -> dict[str, t.Any]:
        name = schema.schema_name()
        known = self.schema_classes.get(name)
        if known is not None and known is not schema:
            name = f"{schema.__module__}.{schema.__qualname__}".replace(".", "_")
        if name not in self.schemas:
            self.schema_classes[name] = schema
            self.schemas[name] = {}  # placeholder: a schema may refer to itself
            self.schemas[name] = schema.json_schema()
            for field in schema.fields.values():
                self._collect_nested(field)
        return {"$ref": f"#/components/schemas/{name}"}

    def _collect_nested(self, field: t.Any) -> None:
        from ._inputs import List, Nested

        if isinstance(field, Nested):
            self.schema_ref(field.schema)
        elif isinstance(field, List):
            self._collect_nested(field.item)


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
