"""The pure digest module and the caller gate: RFC vectors, nonces, replays, parsing bounds, the allow-list."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip_agent.sip import digest
from sip_agent.sip.caller_auth import CallerGate, Verdict, header_values, parse_credentials, source_host
from sip_agent.sip.digest import Algorithm, NonceState, Nonces, parse_authorization, response

SECRET = bytes(range(32))


def test_rfc2617_example() -> None:  # RFC 2617 section 3.5
    got = response(Algorithm.MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
                   "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth")
    assert got == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("alg, want", [
    (Algorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
    (Algorithm.SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_examples(alg: Algorithm, want: str) -> None:  # RFC 7616 section 3.9.1
    got = response(alg, "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
                   "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
                   "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth")
    assert got == want


def test_challenges_offer_sha256_first_then_md5() -> None:
    values = digest.challenges("largesc", "abc")
    assert values == ['Digest realm="largesc", nonce="abc", algorithm=SHA-256, qop="auth"',
                      'Digest realm="largesc", nonce="abc", algorithm=MD5, qop="auth"']
    assert digest.challenges("r", "n", stale=True)[0].endswith(", stale=true")


def test_parse_authorization_reads_what_pjsip_sends() -> None:
    value = ('Digest username="alice", realm="largesc", nonce="18c.ab", uri="sip:bob@127.0.0.1:5062", '
             'response="' + "a" * 64 + '", algorithm=SHA-256, cnonce="xyz", qop=auth, nc=00000001')
    auth = parse_authorization(value)
    assert (auth.username, auth.realm, auth.uri, auth.algorithm, auth.qop, auth.nc, auth.cnonce) == (
        "alice", "largesc", "sip:bob@127.0.0.1:5062", Algorithm.SHA256, "auth", "00000001", "xyz")
    assert parse_authorization(value.replace("algorithm=SHA-256, ", "")).algorithm is Algorithm.MD5


@pytest.mark.parametrize("value, why", [
    ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", "not Digest"),
    ('Digest username="a", realm="r"', "no nonce, uri, response"),
    ('Digest username="a", realm="r", nonce="n", uri="u", response="zz"', "not a hex digest"),
    ('Digest username="a", realm="r", nonce="n", uri="u", response="' + "0" * 32 + '", algorithm=SHA-512',
     "not SHA-256 or MD5"),
    ('Digest username="a", realm="r", nonce="n", uri="u", response="' + "0" * 32 + '", qop=auth-int, nc=00000001, '
     'cnonce="c"', "qop must be auth"),
    ('Digest username="a", username="b"', "given twice"),
    ("Digest " + ", ".join(f"p{i}=1" for i in range(20)), "more than 16"),
    ("Digest " + "x" * 5000, "longer than"),
    ('Digest username="a', "cannot read"),
])
def test_malformed_authorization_names_the_problem(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_authorization(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_authorization_raises_only_value_error(text: str) -> None:
    for value in (text, "Digest " + text):
        try:
            parse_authorization(value)
        except ValueError:
            pass


def test_nonces_expire_and_refuse_forgeries_and_replays() -> None:
    nonces = Nonces(SECRET, "largesc", lifetime_s=60)
    n = nonces.issue(1000.0)
    assert nonces.state(n, 1010.0) is NonceState.VALID
    assert nonces.state(n, 1061.0) is NonceState.STALE
    assert Nonces(bytes(32), "largesc").state(n, 1010.0) is NonceState.FOREIGN  # another process's secret
    assert nonces.state(n.replace(".", ".0"), 1010.0) is NonceState.FOREIGN
    assert nonces.state("ffffffffff." + n.split(".")[1], 1010.0) is NonceState.FOREIGN
    assert nonces.state("é.x", 1010.0) is NonceState.FOREIGN
    assert nonces.use(n, "00000001", 1010.0) is NonceState.VALID
    assert nonces.use(n, "00000001", 1011.0) is NonceState.STALE  # the same count again: a replay
    assert nonces.use(n, "00000002", 1012.0) is NonceState.VALID


def test_the_nonce_table_is_capped_and_forgotten_nonces_cannot_be_replayed() -> None:
    nonces = Nonces(SECRET, "largesc", table=8)
    issued = [nonces.issue(1000.0 + i) for i in range(20)]
    for i, n in enumerate(issued):
        assert nonces.use(n, "00000001", 1000.0 + i) is NonceState.VALID
    assert len(nonces._counts) == 8
    assert nonces.use(issued[0], "00000001", 1030.0) is NonceState.STALE  # evicted, and not accepted again
    assert nonces.use(nonces.issue(1031.0), "00000001", 1031.0) is NonceState.VALID


# -- the gate -----------------------------------------------------------------------------------------------
URI = "sip:bob@127.0.0.1:5062"


def _invite(*auth: str) -> str:
    lines = [f"INVITE {URI} SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:5060", "From: <sip:alice@127.0.0.1>;tag=1"]
    lines += [f"Authorization: {a}" for a in auth]
    return "\r\n".join(lines + ["Content-Length: 0", "", ""])


def _answer(gate: CallerGate, challenge: str, user: str, password: str, nc: str = "00000001") -> str:
    params = dict(p.strip().split("=", 1) for p in challenge.removeprefix("Digest ").split(","))
    nonce, alg = params["nonce"].strip('"'), Algorithm(params["algorithm"])
    r = response(alg, user, gate.realm, password, "INVITE", URI, nonce, nc, "c0ffee", "auth")
    return (f'Digest username="{user}", realm="{gate.realm}", nonce="{nonce}", uri="{URI}", response="{r}", '
            f'algorithm={alg.value}, cnonce="c0ffee", qop=auth, nc={nc}')


@pytest.mark.parametrize("which", [0, 1])  # SHA-256, MD5
def test_gate_challenges_then_admits_the_right_password(which: int) -> None:
    gate = CallerGate(users={"alice": "s3cret"}, secret=SECRET)
    first = gate.decide("127.0.0.1:5060", _invite(), 100.0)
    assert first.verdict is Verdict.CHALLENGE and first.code == 401 and len(first.headers) == 2
    assert [name for name, _ in first.headers] == ["WWW-Authenticate"] * 2
    answer = _answer(gate, first.headers[which][1], "alice", "s3cret")
    ok = gate.decide("127.0.0.1:5060", _invite(answer), 101.0)
    assert ok.verdict is Verdict.ADMIT and ok.user == "alice"
    again = gate.decide("127.0.0.1:5060", _invite(answer), 102.0)  # the same header replayed on a new INVITE
    assert again.verdict is Verdict.CHALLENGE and "stale=true" in again.headers[0][1]


def test_gate_refuses_wrong_password_unknown_user_and_wrong_uri_alike() -> None:
    gate = CallerGate(users={"alice": "s3cret"}, secret=SECRET)
    challenge = gate.decide("127.0.0.1:5060", _invite(), 100.0).headers[0][1]
    for user, password in (("alice", "wrong"), ("mallory", "s3cret")):
        verdict = gate.decide("127.0.0.1:5060", _invite(_answer(gate, challenge, user, password)), 101.0)
        assert (verdict.verdict, verdict.code, verdict.reason) == (Verdict.REFUSE, 403, "Forbidden")
    moved = _answer(gate, challenge, "alice", "s3cret").replace(URI, "sip:carol@127.0.0.1")
    assert gate.decide("127.0.0.1:5060", _invite(moved), 101.0).code == 403
    stale = gate.decide("127.0.0.1:5060", _invite(_answer(gate, challenge, "alice", "s3cret")), 100.0 + 400)
    assert stale.code == 401 and "stale=true" in stale.headers[0][1]
    other_realm = _answer(gate, challenge, "alice", "s3cret").replace('realm="largesc"', 'realm="elsewhere"')
    assert gate.decide("127.0.0.1:5060", _invite(other_realm), 101.0).code == 401
    assert gate.decide("127.0.0.1:5060", _invite('Digest username="a'), 101.0).code == 400


def test_allow_list_comes_first() -> None:
    nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    gate = CallerGate(allow=nets, users={"alice": "x"}, secret=SECRET)
    refused = gate.decide("127.0.0.1:5060", _invite(), 0.0)
    assert (refused.code, refused.why) == (403, "source 127.0.0.1 is not in --allow")
    assert gate.decide("10.1.2.3:5060", _invite(), 0.0).code == 401
    assert gate.decide("[::1]:5060", _invite(), 0.0).code == 401
    assert CallerGate(allow=nets).decide("10.9.9.9:1", _invite(), 0.0).verdict is Verdict.ADMIT
    assert CallerGate(allow=nets).decide("garbage", _invite(), 0.0).code == 403


def test_helpers() -> None:
    assert source_host("127.0.0.1:5060") == "127.0.0.1" and source_host("[2001:db8::1]:5060") == "2001:db8::1"
    uri, values = header_values("INVITE sip:a@b SIP/2.0\r\nAuthorization: Digest a=1,\r\n b=2\r\nX: y\r\n\r\n"
                                "Authorization: in the body", "authorization", 4)
    assert (uri, values) == ("sip:a@b", ["Digest a=1, b=2"])
    assert parse_credentials("# users\nalice:pa:ss\n\nbob:x\n", "F") == {"alice": "pa:ss", "bob": "x"}
    for bad, why in (("alice\n", "line 1: write user:password"), ("a:b\na:c\n", "line 2: user 'a' is already"),
                     ("# none\n", "no user:password line"), ("a b:c\n", "no spaces")):
        with pytest.raises(ValueError, match=why):
            parse_credentials(bad, "F")


def test_only_the_offered_algorithms_are_accepted() -> None:
    gate = CallerGate(users={"alice": "s3cret"}, secret=SECRET, algorithms=(Algorithm.SHA256,))
    first = gate.decide("127.0.0.1:5060", _invite(), 100.0)
    assert [v for _, v in first.headers] == [digest.challenges("largesc", first.headers[0][1].split('"')[3],
                                                               algorithms=(Algorithm.SHA256,))[0]]
    md5 = _answer(gate, first.headers[0][1].replace("SHA-256", "MD5"), "alice", "s3cret")
    assert gate.decide("127.0.0.1:5060", _invite(md5), 101.0).code == 403  # no downgrade to MD5
    with pytest.raises(ValueError):
        CallerGate(users={"a": "b"}, secret=SECRET, algorithms=())
