"""The exception tree (core/errors.py): every error carries its answer, `answer` reads it, and the
tree drawn in the module's docstring names every class there is."""

from __future__ import annotations

import huihua.core.errors as errors
from huihua.core.errors import (
    HuihuaError,
    SessionDataTooLarge,
    SessionGone,
    StoreFull,
    StoreUnavailable,
    TooManyAttempts,
    WrongPassword,
    answer,
)
from huihua.http.errors import ApiError
from huihua.wechat.errors import WeChatUnavailable


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_the_drawn_tree_names_every_error() -> None:
    doc = errors.__doc__ or ""
    for cls in _subclasses(HuihuaError) | {HuihuaError}:
        if not cls.__module__.startswith("huihua.wechat"):  # WeChatError's subtree is drawn there
            assert cls.__name__ in doc, cls


def test_an_error_with_no_answer_of_its_own_is_a_500_for_the_log_only() -> None:
    assert answer(WeChatUnavailable("secret detail")) == (
        500,
        "internal_error",
        "an unexpected error; it has been logged",
        {},
    )
    assert answer(KeyError("x")).code == "internal_error"


def test_answers_say_what_the_api_says() -> None:
    assert answer(SessionGone("gone meanwhile")) == (401, "session_revoked", "gone meanwhile", {})
    status, code, message, headers = answer(StoreUnavailable("connection refused to 10.0.0.1"))
    assert (status, code, headers) == (503, "store_unavailable", {"Retry-After": "1"})
    assert "10.0.0.1" not in message  # the raised text is for the log
    assert answer(StoreFull("disk full"))[:2] == (507, "store_full")
    assert answer(StoreFull("disk full")).headers == {}
    assert answer(SessionDataTooLarge(10, 5))[:2] == (413, "session_data_too_large")
    assert answer(TooManyAttempts(7)).headers == {"Retry-After": "7"}
    assert answer(WrongPassword(status=403))[:2] == (403, "invalid_credentials")
    assert answer(ApiError(404, "not_found", "no", {"Cache-Control": "no-store"})) == (
        404,
        "not_found",
        "no",
        {"Cache-Control": "no-store"},
    )
