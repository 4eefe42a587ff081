"""realcast.jwt_decoder: the tuned pyjwt decoder keeps pyjwt's rules."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS

from realcast.jwt_decoder import HmacFastPath, decode_segment, make_decoder

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Mostly valid base64url, with padding and junk often enough to reach every rule.
segments = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=40).map(str.encode),
    st.tuples(st.text(alphabet=_ALPHABET, max_size=40), st.text(alphabet="=", max_size=4)).map(
        lambda parts: (parts[0] + parts[1]).encode()
    ),
    st.text(alphabet=_ALPHABET + "=+/!. \n\x00é", max_size=40).map(str.encode),
    st.binary(max_size=40),
)


def _outcome(decode: object, segment: bytes) -> tuple[str, bytes | str]:
    assert callable(decode)
    try:
        return "ok", decode(segment, "payload")
    except jwt.DecodeError as err:
        return "error", str(err)


@settings(max_examples=1500, deadline=None)
@given(segments)
def test_decode_segment_matches_pyjwt(segment: bytes) -> None:
    assert _outcome(decode_segment, segment) == _outcome(PyJWS._decode_base64url_segment, segment)


@pytest.mark.parametrize(
    ("segment", "decoded"),
    [(b"", b""), (b"YQ", b"a"), (b"YQ==", b"a"), (b"YWI", b"ab"), (b"YWI=", b"ab"), (b"-_8", b"\xfb\xff")],
)
def test_decode_segment_accepts(segment: bytes, decoded: bytes) -> None:
    assert decode_segment(segment, "payload") == decoded


@pytest.mark.parametrize("segment", [b"YR", b"Y", b"YQ=", b"YQ===", b"Y+/=", b"YQ!!", b"YWI==", b"=", b"a\nb"])
def test_decode_segment_refuses(segment: bytes) -> None:
    # YR: non-canonical trailing bits; YQ=: padding short of a multiple of four; + and /: not URL-safe.
    with pytest.raises(jwt.DecodeError, match="Invalid payload padding"):
        decode_segment(segment, "payload")


def test_decoder_uses_the_fast_paths() -> None:
    # Fails if pyjwt moves the internals the decoder tunes (it would then be plain pyjwt, slower).
    jws = make_decoder()._jws
    assert jws._decode_base64url_segment is decode_segment
    assert type(jws._algorithms["HS256"]).__name__ == "_PreparedHMAC"


def test_decoder_refuses_a_tampered_token() -> None:
    secret = "s" * 32
    token = jwt.encode({"sub": "u", "aud": "app", "exp": 4_000_000_000}, secret, algorithm="HS256")
    decoder = make_decoder()
    assert decoder.decode(token, secret, algorithms=["HS256"], audience="app")["sub"] == "u"
    header, payload, signature = token.split(".")
    # junk in a segment, a cut signature, a payload the signature does not cover
    for bad in (f"{header}.{payload}!.{signature}", f"{header}.{payload}.{signature[:-2]}",
                f"{header}.{payload}x.{signature}"):
        with pytest.raises(jwt.PyJWTError):
            decoder.decode(bad, secret, algorithms=["HS256"], audience="app")


# --- HmacFastPath: accepts only what pyjwt accepts, with the same claims ------------------------

SECRET = "0123456789abcdef0123456789abcdef"
AUDIENCE = "app_hs"


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _token(header: bytes, payload: bytes, secret: str, alg: str = "sha256") -> str:
    signing_input = _b64(header) + b"." + _b64(payload)
    return (signing_input + b"." + _b64(hmac.digest(secret.encode(), signing_input, alg))).decode()


canonical_headers = st.sampled_from(
    [b'{"alg":"HS256","typ":"JWT"}', b'{"typ":"JWT","alg":"HS256"}', b'{"alg":"HS256"}']
)
headers = canonical_headers | st.sampled_from([
    b'{"alg": "HS256", "typ": "JWT"}', b'{"alg":"HS256","typ":"JWT","kid":"k1"}', b'{"alg":"HS256","kid":7}',
    b'{"alg":"HS384","typ":"JWT"}', b'{"alg":"none","typ":"JWT"}', b'{"alg":"HS256","crit":["exp"]}',
    b'{"alg":"HS256","b64":false,"crit":["b64"]}', b"[]", b"not json",
])  # fmt: skip
claim_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=6),
    st.lists(st.one_of(st.just(AUDIENCE), st.text(max_size=4), st.integers()), max_size=3),
)
payloads = st.tuples(
    st.fixed_dictionaries(
        {
            "sub": st.one_of(st.just("user_1"), claim_values),
            "aud": st.one_of(
                st.sampled_from([AUDIENCE, [AUDIENCE, "other"], [AUDIENCE, 7], "", []]),
                st.text(max_size=6),
                claim_values,
            ),
            "exp": st.one_of(st.just(4_000_000_000), claim_values),
        },
        optional={"jti": claim_values, "name": claim_values},
    ),
    st.sampled_from([None, None, "sub", "aud", "exp"]),  # sometimes a required claim is missing
).map(lambda pair: json.dumps({k: v for k, v in pair[0].items() if k != pair[1]}).encode())
raw_payloads = st.sampled_from([
    b"[1]", b'"x"', b"{", b'{"sub":"u","aud":"app_hs","exp":1,"sub":"v"}',
    b'\xef\xbb\xbf{"sub":"u","aud":"app_hs","exp":1}', b'{"exp":NaN,"sub":"u","aud":"app_hs"}',
    '{"sub":"u","aud":"app_hs","exp":1}'.encode("utf-16"),
])  # fmt: skip
tampers = st.just("none") | st.sampled_from(["payload", "signature", "pad", "dots", "space", "wrong-secret"])


def _tamper(token: str, how: str) -> str:
    header, payload, signature = token.split(".")
    if how == "payload":
        payload = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    elif how == "signature":
        signature = signature[:-2]
    elif how == "pad":
        payload += "=" * (-len(payload) % 4 or 4)
    elif how == "dots":
        signature += ".x"
    elif how == "space":
        header = " " + header
    return f"{header}.{payload}.{signature}"


def _pyjwt(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = make_decoder().decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    except jwt.PyJWTError:
        return None
    return claims


@settings(max_examples=1500, deadline=None)
@given(headers, payloads | raw_payloads, tampers)
def test_fast_path_accepts_only_what_pyjwt_accepts(header: bytes, payload: bytes, tamper: str) -> None:
    fast = HmacFastPath.for_app("HS256", SECRET.encode(), AUDIENCE)
    assert fast is not None
    secret = "another secret of 32 bytes......" if tamper == "wrong-secret" else SECRET
    token = _tamper(_token(header, payload, secret), tamper)
    accepted = fast.decode(token)
    if accepted is not None:
        assert accepted == _pyjwt(token)


@pytest.mark.parametrize("header", [b'{"alg":"HS256","typ":"JWT"}', b'{"typ":"JWT","alg":"HS256"}', b'{"alg":"HS256"}'])
@pytest.mark.parametrize("aud", [AUDIENCE, [AUDIENCE], ["other", AUDIENCE]])
def test_fast_path_takes_the_common_tokens(header: bytes, aud: object) -> None:
    # Not vacuous: the canonical tokens of pyjwt, jsonwebtoken and most issuers take the fast path.
    fast = HmacFastPath.for_app("HS256", SECRET.encode(), AUDIENCE)
    assert fast is not None
    claims = {"sub": "u", "aud": aud, "exp": 4_000_000_000, "name": "Ann", "jti": "j"}
    token = _token(header, json.dumps(claims).encode(), SECRET)
    assert fast.decode(token) == claims == _pyjwt(token)
    assert fast.decode(jwt.encode(claims, SECRET, algorithm="HS256")) == claims


@pytest.mark.parametrize(
    "change",
    [{"aud": [AUDIENCE, 7]}, {"aud": ""}, {"aud": []}, {"aud": "other"}, {"aud": {"a": AUDIENCE}}, {"sub": 5},
     {"sub": None}, {"jti": 5}, {"exp": None}],
)  # fmt: skip
def test_fast_path_leaves_odd_claims_to_pyjwt(change: dict[str, Any]) -> None:
    fast = HmacFastPath.for_app("HS256", SECRET.encode(), AUDIENCE)
    assert fast is not None
    claims = json.dumps({"sub": "u", "aud": AUDIENCE, "exp": 1} | change).encode()
    token = _token(b'{"alg":"HS256","typ":"JWT"}', claims, SECRET)
    assert fast.decode(token) is None
    assert _pyjwt(token) is None  # each of these is a refusal


def test_fast_path_is_for_hmac_keys_pyjwt_takes_without_a_warning() -> None:
    assert HmacFastPath.for_app("HS256", b"short", AUDIENCE) is None  # pyjwt warns: < 32 bytes
    assert HmacFastPath.for_app("HS512", SECRET.encode(), AUDIENCE) is None  # < 64 bytes for HS512
    assert HmacFastPath.for_app("RS256", SECRET.encode(), AUDIENCE) is None
    pem = b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 64 + b"\n-----END PUBLIC KEY-----\n"
    with pytest.raises(jwt.InvalidKeyError):
        jwt.decode(jwt.encode({"sub": "u"}, "x" * 32), pem, algorithms=["HS256"])  # pyjwt refuses it
    assert HmacFastPath.for_app("HS256", pem, AUDIENCE) is None
    assert HmacFastPath.for_app("HS384", b"x" * 48, AUDIENCE) is not None
