"""The pure protocol layer: answers, errors, retry policy and the public surface."""

from __future__ import annotations

import json
from typing import Any

import pytest

import huihua.wechat
import huihua.wechat.crypto
import huihua.wechat.emulator
from huihua.core.errors import HuihuaError
from huihua.wechat import (
    CodeUsed,
    InvalidCode,
    InvalidCredentials,
    InvalidSignature,
    InvalidToken,
    QuotaExhausted,
    RateLimited,
    UserBlocked,
    WeChatError,
    WeChatUnavailable,
)
from huihua.wechat.errors import error_for, rid_of
from huihua.wechat.protocol import (
    ApiResponse,
    NetworkFailure,
    RetryPolicy,
    code2session_request,
    decode,
    parse_access_token,
    parse_phone_info,
    phone_number_request,
    stable_token_request,
)


@pytest.mark.parametrize("module", [huihua.wechat, huihua.wechat.crypto, huihua.wechat.emulator])
def test_public_names_are_sorted_and_importable(module: Any) -> None:
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [
        (-1, WeChatUnavailable),
        (40029, InvalidCode),
        (41008, InvalidCode),
        (40163, CodeUsed),
        (40226, UserBlocked),
        (45011, RateLimited),
        (45009, QuotaExhausted),
        (40013, InvalidCredentials),
        (40125, InvalidCredentials),
        (41002, InvalidCredentials),
        (41004, InvalidCredentials),
        (40164, InvalidCredentials),
        (40001, InvalidToken),
        (40014, InvalidToken),
        (42001, InvalidToken),
        (41001, InvalidToken),
        (87009, InvalidSignature),
        (89300, WeChatError),
    ],
)
def test_errcodes_map_to_the_tree(errcode: int, kind: type[WeChatError]) -> None:
    error = error_for(errcode, "something, rid: 6592d7c7-3c1a3f1e-2ed6bd4f")
    assert type(error) is kind and isinstance(error, HuihuaError)
    assert (error.errcode, error.rid) == (errcode, "6592d7c7-3c1a3f1e-2ed6bd4f")
    assert f"errcode {errcode}" in str(error)


def test_rid_in_both_forms() -> None:
    assert rid_of("invalid code, rid: 61a2-b3c4-d5e6") == "61a2-b3c4-d5e6"
    assert rid_of("invalid code hints: [ req_id: hGl5Ab0Ayy ]") == "hGl5Ab0Ayy"
    assert rid_of("invalid code") is None


def answer(body: Any, status: int = 200) -> ApiResponse:
    return ApiResponse(status, json.dumps(body).encode())


def test_decode_treats_a_missing_errcode_as_zero() -> None:
    assert decode(answer({"openid": "o"})) == {"openid": "o"}
    assert decode(answer({"errcode": "0", "errmsg": "ok"}))["errmsg"] == "ok"
    assert decode(answer({"errcode": None, "a": 1}))["a"] == 1


def test_decode_scrubs_redacted_values() -> None:
    with pytest.raises(InvalidCredentials) as caught:
        decode(answer({"errcode": 40125, "errmsg": "invalid appsecret s3cr3t"}), ["s3cr3t", ""])
    assert "s3cr3t" not in str(caught.value) and "***" in caught.value.errmsg


def test_decode_network_failure() -> None:
    with pytest.raises(WeChatUnavailable, match="ReadTimeout"):
        decode(NetworkFailure("ReadTimeout", maybe_sent=True))


def test_business_errors_win_over_the_http_status() -> None:
    with pytest.raises(InvalidCode):
        decode(answer({"errcode": 40029, "errmsg": "invalid code"}, status=400))


@pytest.mark.parametrize(("given", "expected"), [(86, "86"), ("86", "86"), ("1", "1")])
def test_phone_country_code_as_number_or_string(given: Any, expected: str) -> None:
    info = parse_phone_info(
        {"phone_info": {"phoneNumber": "+1 555", "purePhoneNumber": "555", "countryCode": given}}
    )
    assert info.country_code == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"phone_info": "x"},
        {"phone_info": {"phoneNumber": "1", "purePhoneNumber": "1"}},
        {"phone_info": {"phoneNumber": "1", "purePhoneNumber": "1", "countryCode": True}},
    ],
)
def test_bad_phone_info(body: dict[str, Any]) -> None:
    with pytest.raises(WeChatUnavailable):
        parse_phone_info(body)


def test_access_token_expires_in() -> None:
    assert parse_access_token({"access_token": "t"}).expires_in == 7200
    with pytest.raises(WeChatUnavailable):
        parse_access_token({"access_token": "t", "expires_in": "soon"})


def test_requests_know_what_is_safe_to_resend_and_hide_secrets() -> None:
    code = code2session_request("wx", "s3cr3t", "c0de")
    assert not code.idempotent and "s3cr3t" not in repr(code) and code.redact == ("s3cr3t",)
    assert stable_token_request("wx", "s").idempotent
    assert not stable_token_request("wx", "s", force_refresh=True).idempotent
    phone = phone_number_request("T0KEN", "c", "o")
    assert phone.json == {"code": "c", "openid": "o"} and "T0KEN" not in repr(phone)
    assert phone_number_request("T", "c").json == {"code": "c"}


def test_backoff_grows_with_jitter_and_is_bounded() -> None:
    policy = RetryPolicy(retries=5, backoff=0.1, max_delay=1.0)
    for attempt, ceiling in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0]):
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
