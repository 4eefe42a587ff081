"""Token decoding for the connect path: a tuned private pyjwt decoder, and a fast path.

Layer: application (realcast); imports pyjwt only. No I/O.

pyjwt parses tokens and checks signatures and claims; ``make_decoder`` only removes work it
repeats for every token. Both changes reach into pyjwt internals (``PyJWT._jws``,
``PyJWS._decode_base64url_segment``); without them the decoder is plain pyjwt, and
``tests/unit/realcast/test_jwt_decoder.py`` fails if those internals move.

``HmacFastPath`` accepts the one common shape of token (an HS* token with the canonical header,
as pyjwt, jsonwebtoken and most issuers write it) without pyjwt's forty-odd calls: measured in
the running server, pyjwt took 35 us of a connect's 140 us of Python. It only ever accepts, and
only what pyjwt would accept with the same claims (a differential property test holds it to
that); every other token, valid or not, goes to pyjwt, which also words every refusal.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any, Final

import jwt
from jwt.algorithms import HMACAlgorithm

__all__ = ["HmacFastPath", "decode_segment", "make_decoder"]

_BASE64URL_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URLSAFE_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
_REQUIRED_CLAIMS: Final = ("exp", "sub", "aud")
# The HS* algorithms and their hashes, as pyjwt's HMACAlgorithm names them.
_HMAC_HASHES: Final = {"HS256": HMACAlgorithm.SHA256, "HS384": HMACAlgorithm.SHA384, "HS512": HMACAlgorithm.SHA512}


class _PreparedHMAC(HMACAlgorithm):
    """HMAC whose key checks run once per secret.

    pyjwt re-checks an HMAC secret on every token (is it a PEM? a JWK? it even parses it
    as JSON), about 0.1 ms, a sixth of a whole connect. Our secrets are the configured
    apps' (never the token's), so the prepared key is kept: the cache is bounded by the
    number of apps.
    """

    def __init__(self, hash_alg: Any) -> None:
        super().__init__(hash_alg)
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = super().prepare_key(key)
        return prepared


def decode_segment(segment: bytes, name: str) -> bytes:
    """Decode one base64url segment of a token with pyjwt's rules, at C speed.

    The rules of ``PyJWS._decode_base64url_segment``: at most two ``=`` and only on a
    multiple of four characters, nothing outside the URL-safe alphabet (checked here, not left
    to the decoder, which would skip junk), no length of 4n+1,
    canonical trailing bits. pyjwt tests the alphabet with a generator step per character,
    a third of its time on a 200-byte token (23.5 -> 14.9 us per token); here one
    ``bytes.translate`` does it. Property-tested against pyjwt's own.

    Raises:
        jwt.DecodeError: as pyjwt does, with its message.
    """
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if (
        padding > 2
        or (padding and len(segment) % 4)
        or len(stripped) % 4 == 1
        or stripped.translate(None, _BASE64URL_ALPHABET)
    ):
        raise jwt.DecodeError(f"Invalid {name} padding")
    # binascii directly: the base64 module's urlsafe wrappers cost more than the decoding.
    standard = stripped.translate(_URLSAFE_TO_STANDARD)
    try:
        decoded = binascii.a2b_base64(standard + b"=" * (-len(stripped) % 4))
    except binascii.Error as err:
        raise jwt.DecodeError(f"Invalid {name} padding") from err
    if binascii.b2a_base64(decoded, newline=False).rstrip(b"=") != standard:
        raise jwt.DecodeError(f"Invalid {name} padding")
    return decoded


def make_decoder() -> jwt.PyJWT:
    """A private PyJWT: HS* algorithms keep their prepared keys, segments decode in C.

    Requires ``exp``, ``sub`` and ``aud`` and checks the audience; the time claims are left
    to the caller (``TokenVerifier`` checks them against its injected clock).
    """
    # Options given once here, not per token (pyjwt merges per-call options into a new dict).
    decoder = jwt.PyJWT(
        options={
            "require": list(_REQUIRED_CLAIMS),
            "verify_signature": True,
            "verify_aud": True,
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        }
    )
    jws = getattr(decoder, "_jws", None)  # pyjwt internals: without them, plain pyjwt is used
    if jws is not None:
        for name, hash_alg in _HMAC_HASHES.items():
            jws.unregister_algorithm(name)
            jws.register_algorithm(name, _PreparedHMAC(hash_alg))
        if hasattr(jws, "_decode_base64url_segment"):
            # A static method there: an instance attribute takes its place for this decoder only.
            jws._decode_base64url_segment = decode_segment
    return decoder


def _segment(data: dict[str, str]) -> bytes:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=")


class HmacFastPath:
    """Claims of a canonical, valid HS* token for one app, or None for pyjwt to decide.

    Accepts only when every check pyjwt makes with ``make_decoder``'s options passes:
    the header segment is byte for byte one of the canonical headers of the app's algorithm
    (so the algorithm is the pinned one, and there is no ``kid``, ``crit`` or ``b64`` to
    interpret), the segments are strict base64url (``decode_segment``), the HMAC matches
    (``hmac.compare_digest``), the payload is a JSON object with ``exp``, ``sub`` and ``aud``
    not null, ``aud`` names the app (a string, or a list of strings holding it), ``sub`` is a
    string and ``jti``, if present, too. The time claims are the caller's, as with pyjwt.

    Use ``for_app``: it returns None for keys pyjwt would refuse or warn about.
    """

    __slots__ = ("_audience", "_headers", "_mac")

    def __init__(self, algorithm: str, key: bytes, audience: str) -> None:
        # Keyed once; each token copies it (the key schedule is not redone: 1.6 -> 1.1 us).
        self._mac = hmac.new(key, digestmod=_HMAC_HASHES[algorithm])
        self._audience = audience
        self._headers = frozenset(
            _segment(header)
            for header in ({"alg": algorithm, "typ": "JWT"}, {"typ": "JWT", "alg": algorithm}, {"alg": algorithm})
        )

    @classmethod
    def for_app(cls, algorithm: str, key: object, audience: str) -> HmacFastPath | None:
        """The fast path for an app, or None when its tokens must all go to pyjwt."""
        if algorithm not in _HMAC_HASHES or not isinstance(key, str | bytes):
            return None
        hmac_algorithm = HMACAlgorithm(_HMAC_HASHES[algorithm])
        try:
            prepared = hmac_algorithm.prepare_key(key)
        except jwt.InvalidKeyError:
            return None
        if hmac_algorithm.check_key_length(prepared) is not None:
            return None  # pyjwt warns about these on every token: let it
        return cls(algorithm, prepared, audience)

    def decode(self, token: str) -> dict[str, Any] | None:
        """The token's claims, or None: then pyjwt decides (it may still accept the token)."""
        raw = token.encode()
        header, _, rest = raw.partition(b".")
        if header not in self._headers:
            return None
        payload_segment, dot, signature_segment = rest.partition(b".")
        if not dot or b"." in signature_segment:
            return None
        try:
            signature = decode_segment(signature_segment, "crypto")
            payload = decode_segment(payload_segment, "payload")
        except jwt.DecodeError:
            return None
        mac = self._mac.copy()
        mac.update(header + b"." + payload_segment)
        if not hmac.compare_digest(signature, mac.digest()):
            return None
        try:
            # pyjwt's parser, so the same claims to the float; from text, not bytes: UTF-16
            # and BOM-prefixed payloads, which json.loads(bytes) also reads, are left to pyjwt.
            claims = json.loads(payload.decode())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
        if not isinstance(claims, dict) or any(claims.get(name) is None for name in _REQUIRED_CLAIMS):
            return None
        audience = claims["aud"]
        if isinstance(audience, str):
            if audience != self._audience:
                return None
        elif not isinstance(audience, list) or self._audience not in audience \
                or not all(isinstance(item, str) for item in audience):
            return None
        if not isinstance(claims["sub"], str) or not isinstance(claims.get("jti", ""), str):
            return None
        return claims
