"""Login never rotates another user's session into the new one (Django's flush on user change).

What `SessionManager.login(current, user_id)` does, exactly: when `current` belongs to another
user, that session is revoked (its token answers SessionRevoked) and a fresh session is created
for `user_id`, with none of the other user's data and none of its deadlines; the other user's
remaining sessions are untouched. An anonymous or same-user `current` is rotated instead.
"""

from __future__ import annotations

import pytest

from huihua.core.errors import SessionRevoked
from huihua.core.policy import HOUR

from .conftest import Harness


def test_login_from_another_users_session_is_a_fresh_session(h: Harness) -> None:
    alices = h.m.login(None, "alice", client="miniprogram")
    h.m.update(alices, set={"secret": "alice's", "cart": [1]})
    other_device = h.m.login(None, "alice", client="miniprogram")
    h.clock.advance(HOUR)
    bobs = h.m.login(h.m.load(alices.token), "bob", client="miniprogram")

    assert bobs.user_id == "bob"
    assert bobs.id != alices.id
    assert bobs.token != alices.token
    assert dict(bobs) == {}
    assert dict(h.m.load(bobs.token)) == {}  # nothing of alice's, stored or handed out
    assert bobs.record.created_at == h.clock.now()  # fresh deadlines, not alice's
    assert bobs.record.timing.absolute_expires_at > alices.record.timing.absolute_expires_at
    with pytest.raises(SessionRevoked):
        h.m.load(alices.token)  # the session bob logged in from is dead, not rotated to him
    assert h.store.get(alices.record.key).data == {}
    assert h.m.load(other_device.token).user_id == "alice"  # alice's other session lives on
    assert [s.id for s in h.m.list_user("alice")] == [other_device.id]
    assert [s.id for s in h.m.list_user("bob")] == [bobs.id]


def test_login_from_an_anonymous_or_own_session_rotates_it(h: Harness) -> None:
    visitor = h.m.create(client="browser", data={"cart": ["tea"]})
    h.clock.advance(600)
    carol = h.m.login(h.m.load(visitor.token), "carol")
    assert dict(carol) == {"cart": ["tea"]}  # the cart comes along
    assert carol.record.created_at == h.clock.now()  # a new principal: the visitor's deadlines do not
    with pytest.raises(SessionRevoked):
        h.m.load(visitor.token)
    h.clock.advance(600)
    again = h.m.login(h.m.load(carol.token), "carol")
    assert again.token != carol.token
    assert dict(h.m.load(again.token)) == {"cart": ["tea"]}
    # the same principal, and still a fresh lifetime: re-authentication starts over (ASVS 7.2.4)
    assert again.record.created_at == h.clock.now() > carol.record.created_at
    assert again.record.timing.absolute_expires_at > carol.record.timing.absolute_expires_at
    with pytest.raises(SessionRevoked):
        h.m.load(carol.token)
    assert [s.id for s in h.m.list_user("carol")] == [again.id]
