"""The gateway's routing rules: which way a call goes, its target, and what a caller hears on failure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip_agent.gateway.routing import Direction, TrunkPlan, caller_status, request_user, route

PLAN = TrunkPlan("sip:192.0.2.20:5080", "sip:{user}@127.0.0.1:5060;transport=tcp")


def _invite(uri: str) -> str:
    return f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nFrom: <sip:a@x>\r\n\r\nv=0\r\n"


def test_a_plain_phone_goes_to_the_trunk_with_its_user() -> None:
    r = route(PLAN, _invite("sip:bob@127.0.0.1:5070"), offers_largesc=False)
    assert (r.direction, r.user, r.target, r.outgoing_largesc) == (
        Direction.TO_TRUNK, "bob", "sip:bob@192.0.2.20:5080", True)


def test_the_peer_gateway_goes_to_the_local_phone() -> None:
    r = route(PLAN, _invite("sip:1001@198.51.100.7:5080;transport=udp"), offers_largesc=True)
    assert (r.direction, r.target, r.outgoing_largesc) == (
        Direction.TO_LOCAL, "sip:1001@127.0.0.1:5060;transport=tcp", False)


@pytest.mark.parametrize("invite, why", [
    ("INVITE sip:127.0.0.1 SIP/2.0\r\n\r\n", "names no user"),
    ("INVITE sip:bo b@h SIP/2.0\r\n\r\n", "SIP/2.0"),  # three words only
    ("INVITE sip:<bad>@h SIP/2.0\r\n\r\n", "not a SIP user name"),
    ("OPTIONS sip:bob@h SIP/2.0\r\n\r\n", "not an INVITE"),
])
def test_requests_without_a_usable_user_are_refused(invite: str, why: str) -> None:
    with pytest.raises(ValueError):
        request_user(invite)


@given(st.text(max_size=200))
def test_request_user_only_raises_value_error(text: str) -> None:
    try:
        user = request_user(text)
    except ValueError:
        return
    assert 1 <= len(user) <= 64 and "@" not in user and ":" not in user


@pytest.mark.parametrize("trunk, local, option", [
    ("sip:bob@192.0.2.20:5080", "sip:{user}@h:1", "--trunk"),
    ("http://x", "sip:{user}@h:1", "--trunk"),
    ("sip:h:1", "sip:alice@h:1", "--local"),
    ("sip:h:1", "sip:{user}", "--local"),
])
def test_bad_targets_name_the_option(trunk: str, local: str, option: str) -> None:
    with pytest.raises(ValueError, match=option):
        TrunkPlan(trunk, local)


@pytest.mark.parametrize("code, want", [
    (404, 404), (486, 486), (480, 480), (603, 603), (408, 408), (0, 408), (503, 503), (500, 503), (502, 503),
    (487, 487), (401, 503),
])
def test_the_caller_gets_the_matching_status(code: int, want: int) -> None:
    assert caller_status(code, "x")[0] == want
