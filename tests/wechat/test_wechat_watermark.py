"""The watermark appid check of open data, case by case (issue 14 item 5: one test stood
between a broken check and main). Data is accepted only when its watermark names exactly our
appid: not a prefix, not an extension, not another case, not a missing or malformed watermark.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from huihua.wechat import WatermarkMismatch
from huihua.wechat.crypto import decrypt_data, encrypt_data

APPID = "wx4f4bc4dec97d474b"
KEY = base64.b64encode(bytes(range(16))).decode()


def sealed(body: dict[str, Any]) -> tuple[str, str]:
    return encrypt_data(KEY, body)  # the watermark exactly as given, or none


def test_our_appid_is_accepted() -> None:
    data, iv = sealed({"nickName": "张三", "watermark": {"appid": APPID, "timestamp": 1}})
    assert decrypt_data(KEY, data, iv, appid=APPID)["nickName"] == "张三"


@pytest.mark.parametrize(
    "watermark",
    [
        pytest.param({"appid": "wx1234567890abcdef", "timestamp": 1}, id="another-appid"),
        pytest.param({"appid": APPID[:-1], "timestamp": 1}, id="a-prefix-of-ours"),
        pytest.param({"appid": APPID + "0", "timestamp": 1}, id="ours-extended"),
        pytest.param({"appid": " " + APPID, "timestamp": 1}, id="ours-with-a-space"),
        pytest.param({"appid": APPID.upper(), "timestamp": 1}, id="another-case"),
        pytest.param({"appid": "", "timestamp": 1}, id="empty-appid"),
        pytest.param({"appid": None, "timestamp": 1}, id="null-appid"),
        pytest.param({"appid": [APPID], "timestamp": 1}, id="appid-in-a-list"),
        pytest.param({"timestamp": 1}, id="no-appid"),
        pytest.param({}, id="empty-watermark"),
        pytest.param(APPID, id="watermark-a-string"),
        pytest.param(None, id="null-watermark"),
    ],
)
def test_anything_but_exactly_our_appid_is_refused(watermark: Any) -> None:
    data, iv = sealed({"nickName": "mallory", "watermark": watermark})
    with pytest.raises(WatermarkMismatch) as caught:
        decrypt_data(KEY, data, iv, appid=APPID)
    assert caught.value.errcode == -41003


def test_data_without_a_watermark_is_refused() -> None:
    data, iv = sealed({"nickName": "mallory", "appid": APPID})  # the appid, but not a watermark
    with pytest.raises(WatermarkMismatch):
        decrypt_data(KEY, data, iv, appid=APPID)


def test_the_check_is_against_the_configured_appid_not_one_from_the_data() -> None:
    data, iv = sealed({"nickName": "x", "watermark": {"appid": APPID, "timestamp": 1}})
    for configured in ("wx0000000000000000", APPID[:-1], ""):
        with pytest.raises(WatermarkMismatch):
            decrypt_data(KEY, data, iv, appid=configured)
