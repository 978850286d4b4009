"""The answers every operation can give before its route runs, added to the generated document.

JsonBodyMiddleware refuses a body that is not JSON or nests too deep (400 `invalid_json`,
`json_too_deep`) and BodyLimitMiddleware one over the size limit (413 `payload_too_large`), on
every route they wrap, whether or not the operation takes a body; SessionMiddleware refuses a
cookie-authenticated write from another origin (403 `csrf_failed`) on every write. FastAPI only
knows what each route declares, so they are documented here, once, for every operation under the
middleware's prefix.
"""

from __future__ import annotations

from typing import Any

_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_ERROR_INLINE = {  # when no route declared an error (so ErrorOut is not among the components)
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
BEFORE_THE_ROUTE = {
    "400": "The request body is not valid JSON (`invalid_json`) or nests too deep (`json_too_deep`).",
    "413": "The request body is over the size limit (`payload_too_large`).",
}
# SessionMiddleware's cross-origin protection, on every write a browser makes with a cookie
WRITES = {"post", "put", "patch", "delete"}
CSRF = {"403": "A cookie-authenticated write from an origin that is not allowed (`csrf_failed`)."}


def add_body_errors(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Document the 400 and 413 of the body middleware on every operation under `prefix` and the
    403 of the cross-origin check on every write (in place); an operation that already documents
    the status keeps its answer and its text gains this one."""
    known_error = "ErrorOut" in document.get("components", {}).get("schemas", {})
    schema = _ERROR_REF if known_error else _ERROR_INLINE
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "delete", "options", "head", "patch", "trace"}:
                continue
            responses = operation.setdefault("responses", {})
            answers = {**BEFORE_THE_ROUTE, **(CSRF if method in WRITES else {})}
            for status, text in answers.items():
                known = responses.get(status)
                if known is None:
                    responses[status] = {
                        "description": text,
                        "content": {"application/json": {"schema": schema}},
                    }
                elif text not in known.get("description", ""):
                    known["description"] = f"{known.get('description', '')} {text}".strip()
    return document
