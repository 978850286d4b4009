"""OpenAPI links: which answer feeds which request (a login's session id, user id and token).

They document the API's flows in /docs and let stateful clients and fuzzers (schemathesis'
stateful phase) chain requests: sign up -> log in -> read me, change data, list and revoke
sessions, log out. FastAPI has no place for links, so they are added to the generated document.
"""

from __future__ import annotations

from typing import Any

# (method, path) -> description; these use the session the login answer just made
_WITH_SESSION = {
    ("get", "/v1/auth/me"): "who is logged in",
    ("get", "/v1/sessions"): "the user's sessions",
    ("get", "/v1/session/data"): "the session's data",
    ("patch", "/v1/session/data"): "change the session's data",
    ("post", "/v1/auth/logout"): "end this session",
    ("post", "/v1/auth/logout-all"): "end the user's sessions",
    ("post", "/v1/auth/password"): "change the password (rotates the session)",
}
_SESSION_ID = {("delete", "/v1/sessions/{session_id}"): "revoke this session by its id"}
_USER_ID = {
    ("get", "/v1/admin/users/{user_id}/sessions"): "the user's sessions (service key)",
    ("delete", "/v1/admin/users/{user_id}/sessions"): "revoke every session of the user (service key)",
    ("post", "/v1/admin/users/{user_id}/disable"): "disable the user (service key)",
    ("post", "/v1/admin/users/{user_id}/enable"): "enable the user (service key)",
}
_BOTH = {
    ("delete", "/v1/admin/users/{user_id}/sessions/{session_id}"): "revoke this session (service key)",
}
# answers that carry a new session: {user, session, token?}
_SIGN_INS = [
    ("post", "/v1/auth/login", "200"),
    ("post", "/v1/auth/password", "200"),
    ("post", "/v1/auth/wechat", "200"),
    ("post", "/v1/auth/wechat/bind", "200"),
]


def _ref(method: str, path: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _name(method: str, path: str) -> str:
    words = [w.strip("{}") for w in path.removeprefix("/v1/").split("/") if w]
    return method + "_" + "_".join(words).replace("-", "_")


def _session_links() -> dict[str, Any]:
    links: dict[str, Any] = {}
    for (method, path), text in _WITH_SESSION.items():
        links[_name(method, path)] = {"operationRef": _ref(method, path), "description": text}
    for (method, path), text in _SESSION_ID.items():
        links[_name(method, path)] = {
            "operationRef": _ref(method, path),
            "parameters": {"session_id": "$response.body#/session/id"},
            "description": text,
        }
    for (method, path), text in _USER_ID.items():
        links[_name(method, path)] = {
            "operationRef": _ref(method, path),
            "parameters": {"user_id": "$response.body#/user/id"},
            "description": text,
        }
    for (method, path), text in _BOTH.items():
        links[_name(method, path)] = {
            "operationRef": _ref(method, path),
            "parameters": {"user_id": "$response.body#/user/id", "session_id": "$response.body#/session/id"},
            "description": text,
        }
    links["post_introspect"] = {
        "operationRef": _ref("post", "/v1/introspect"),
        "requestBody": {"token": "$response.body#/token"},
        "description": "introspect the new token (header clients get it in the body; service key)",
    }
    return links


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add the links to a generated OpenAPI document (in place; operations absent are skipped)."""
    paths: dict[str, Any] = document.get("paths", {})

    def present(ref: str) -> bool:
        path, _, method = ref.removeprefix("#/paths/").rpartition("/")
        return method in paths.get(path.replace("~1", "/").replace("~0", "~"), {})

    def put(method: str, path: str, status: str, links: dict[str, Any]) -> None:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is not None:
            usable = {k: v for k, v in links.items() if present(v["operationRef"])}
            response.setdefault("links", {}).update(usable)

    for method, path, status in _SIGN_INS:
        put(method, path, status, _session_links())
    put("post", "/v1/accounts", "201", {
        "post_auth_login": {
            "operationRef": _ref("post", "/v1/auth/login"),
            "requestBody": {"username": "$request.body#/username", "password": "$request.body#/password"},
            "description": "log in to the account just made",
        },
        **{k: v for k, v in _session_links().items() if k in {_name(m, p) for m, p in _USER_ID}},
    })  # fmt: skip
    put("get", "/v1/sessions", "200", {
        "delete_sessions_session_id": {
            "operationRef": _ref("delete", "/v1/sessions/{session_id}"),
            "parameters": {"session_id": "$response.body#/sessions/0/id"},
            "description": "revoke the first session listed",
        },
    })  # fmt: skip
    by_id = {_name(m, p) for m, p in (*_USER_ID, *_BOTH, *_SESSION_ID)}
    put("get", "/v1/auth/me", "200", {k: v for k, v in _session_links().items() if k in by_id})
    put("patch", "/v1/session/data", "200", {
        "get_session_data": {"operationRef": _ref("get", "/v1/session/data"), "description": "read it back"},
    })  # fmt: skip
    return document
