"""Tokens and session ids are random, not only the right length (issue 14 item 5).

Statistical checks with thresholds far in the tail (a false alarm is rarer than one in a
million runs) catch a generator that is biased, clock- or counter-derived, or shared between
managers or processes; a length check alone catches none of these.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from huihua.core.clock import FakeClock
from huihua.core.manager import SessionManager
from huihua.core.tokens import new_session_id, new_token
from huihua.stores.memory import MemoryStore

N = 20_000
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def chi_square(text: str) -> float:
    counts = Counter(text)
    assert set(counts) <= set(ALPHABET)
    expected = len(text) / 64
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in ALPHABET)


def bits(value: str) -> list[int]:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return [(byte >> i) & 1 for byte in raw for i in range(8)]


def test_tokens_and_ids_never_repeat() -> None:
    tokens = [new_token(None) for _ in range(N)] + [new_token("alice") for _ in range(N)]
    ids = [new_session_id() for _ in range(2 * N)]
    assert len(set(tokens)) == len(tokens)
    assert len(set(ids)) == len(ids)
    assert len({t[4:] for t in tokens}) == len(tokens)  # the secret part alone never repeats
    assert len({t[:4] for t in tokens[:N]}) > N * 0.99  # anonymous routing tags are random too


def test_characters_are_uniform() -> None:
    # the last character of 32 (or 16) bytes in base64 carries only 4 (or 2) bits: left out
    secrets_ = "".join(new_token(None)[4:-1] for _ in range(N))
    ids = "".join(new_session_id()[:-1] for _ in range(N))
    # 63 degrees of freedom: the 1e-6 tail starts near 130; a real bias of one character in a
    # thousand draws already lands far beyond
    assert chi_square(secrets_) < 140
    assert chi_square(ids) < 140


def test_every_bit_is_balanced_and_bits_are_independent() -> None:
    samples = [bits(new_token(None)[4:])[:256] for _ in range(N)]
    ones = [sum(column) for column in zip(*samples, strict=True)]
    sigma = (N * 0.25) ** 0.5
    assert all(abs(c - N / 2) < 6 * sigma for c in ones), ones
    # neighbouring tokens are unrelated: about half their bits differ (no counter, no stepping)
    flips = [sum(a != b for a, b in zip(x, y, strict=True)) for x, y in itertools.pairwise(samples)]
    mean = sum(flips) / len(flips)
    assert abs(mean - 128) < 1.0
    assert min(flips) > 64  # 8 sigma from 128


def test_the_same_fake_clock_gives_different_tokens() -> None:
    """Two managers (two processes, one clock reading) must never mint the same token or id."""
    clock = FakeClock()
    one = SessionManager(MemoryStore(), clock=clock, events=())
    two = SessionManager(MemoryStore(), clock=clock, events=())
    a = [one.create(client="browser") for _ in range(200)]
    b = [two.create(client="browser") for _ in range(200)]
    assert clock.now() == FakeClock().now()  # the clock never moved
    assert not {s.token for s in a} & {s.token for s in b}
    assert not {s.id for s in a} & {s.id for s in b}
    assert len({s.token for s in a + b}) == 400


def test_a_frozen_system_clock_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in a token comes from time.time(): with it frozen, tokens stay unique and uniform."""
    monkeypatch.setattr(time, "time", lambda: 1_767_225_600.0)
    monkeypatch.setattr(time, "time_ns", lambda: 1_767_225_600_000_000_000)
    tokens = [new_token(None) for _ in range(N // 4)]
    assert len(set(tokens)) == len(tokens)
    assert chi_square("".join(t[4:-1] for t in tokens)) < 140


def test_two_fresh_processes_with_a_frozen_clock_mint_different_tokens() -> None:
    """A counter, a fixed seed or the time (hashed or not) would repeat across two processes
    started alike at one clock reading."""
    script = (
        "import json, time\n"
        "for name in ('time', 'monotonic', 'perf_counter', 'process_time'):\n"
        "    setattr(time, name, lambda: 1767225600.0)\n"
        "for name in ('time_ns', 'monotonic_ns', 'perf_counter_ns'):\n"
        "    setattr(time, name, lambda: 1767225600000000000)\n"
        "from huihua.core.tokens import new_token, new_session_id\n"
        "print(json.dumps([new_token('alice') for _ in range(200)] + [new_session_id() for _ in range(200)]))\n"
    )
    outputs = [
        set(
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", script],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={"PYTHONHASHSEED": "0"},
                ).stdout
            )
        )
        for _ in range(2)
    ]
    assert len(outputs[0]) == len(outputs[1]) == 400
    assert not outputs[0] & outputs[1]
