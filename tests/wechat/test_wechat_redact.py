"""httpx's and httpcore's loggers never print WeChat's secret query parameters."""

from __future__ import annotations

import logging

import httpx
import pytest

import huihua.wechat.client  # noqa: F401 - importing the client installs the filter
from huihua.wechat.redact import LOGGERS, redact


def test_secret_parameters_are_redacted_and_the_rest_kept() -> None:
    url = "http://x/sns/jscode2session?appid=wx1&secret=S3&js_code=C0DE&grant_type=authorization_code"
    assert (
        redact(url)
        == "http://x/sns/jscode2session?appid=wx1&secret=***&js_code=***&grant_type=authorization_code"
    )
    assert redact("GET /wxa/checksession?access_token=T&openid=o&signature=abc") == (
        "GET /wxa/checksession?access_token=***&openid=o&signature=***"
    )
    assert redact("errcode=40029 ok") == "errcode=40029 ok"


@pytest.mark.parametrize("name", LOGGERS)
def test_every_logger_httpx_and_httpcore_use_is_filtered(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = httpx.URL("http://x/cgi-bin/token", params={"secret": "THE-SECRET", "appid": "wx1"})
    logging.getLogger(name).info('HTTP Request: %s %s "%s"', "GET", url, "HTTP/1.1 200 OK")
    assert "THE-SECRET" not in caplog.text
    assert "appid=wx1" in caplog.text and "secret=***" in caplog.text
