"""realcast.jwt_decoder: the tuned pyjwt decoder keeps pyjwt's rules."""

from __future__ import annotations

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS

from realcast.jwt_decoder import decode_segment, make_decoder

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
