"""Django's CSRF failure as huihua's JSON error for API clients (issue 15 item 7).

Django answers a failed CSRF check with an HTML page, which a JSON client (the SDK in an H5
build, `fetch` from a web front end) cannot read. Set

    CSRF_FAILURE_VIEW = "huihua.contrib.django.csrf.csrf_failure"

and a request that wants JSON gets `403 {"error": {"code": "csrf_failed", "message": ...}}`, the
service's answer, with a message that says what to do. A request wants JSON when it sent a JSON
body (`Content-Type: application/json`), accepts `application/json`, or its path is an API path
(it contains `/v1/` or starts with `/api/`). Every other request gets Django's own page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure

__all__ = ["csrf_failure", "csrf_message", "wants_json"]


def wants_json(request: HttpRequest) -> bool:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    accept = request.headers.get("Accept", "").lower()
    return (
        content_type == "application/json"
        or content_type.endswith("+json")
        or "application/json" in accept
        or "/v1/" in request.path
        or request.path.startswith("/api/")
    )


def csrf_message(reason: str) -> str:
    why = reason.rstrip(".") or "CSRF check failed"
    return (
        f"cross-site request refused ({why}): a browser write needs Django's CSRF token in the "
        "X-CSRFToken header (from the csrftoken cookie) and, across origins, the page's origin "
        "in CSRF_TRUSTED_ORIGINS; or use the header transport (X-Session-Transport: header, then "
        "Authorization: Bearer), which needs no CSRF token"
    )


def csrf_failure(
    request: HttpRequest, reason: str = "", template_name: str = "403_csrf.html"
) -> HttpResponse:
    """A CSRF_FAILURE_VIEW: JSON for API clients, Django's page for everyone else."""
    if wants_json(request):
        return JsonResponse({"error": {"code": "csrf_failed", "message": csrf_message(reason)}}, status=403)
    return django_csrf_failure(request, reason, template_name)
