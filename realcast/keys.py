"""JWT key material: which algorithms realcast accepts and how their keys are loaded.

Layer: application (realcast); imports the standard library and ``cryptography``. Used by
``config.py`` (to validate keys at startup) and ``auth.py`` (to verify and mint tokens).

Each app pins exactly one algorithm. HMAC apps hold a shared secret; RSA/ECDSA apps hold only a
PEM *public* key (tokens are minted by the platform's backend with the private key, which
realcast never needs except for ``realcast token --private-key``).
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from .errors import ConfigError

__all__ = [
    "HMAC_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "SigningKey",
    "VerificationKey",
    "load_signing_key",
    "load_verification_key",
]

VerificationKey = bytes | rsa.RSAPublicKey | ec.EllipticCurvePublicKey
SigningKey = bytes | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# RFC 7518 section 3.2: an HMAC key must be at least as long as the hash output.
HMAC_ALGORITHMS: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
# RFC 7518 section 3.4: each ES algorithm is bound to one curve.
_EC_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
SUPPORTED_ALGORITHMS: Final = frozenset(HMAC_ALGORITHMS) | _RSA_ALGORITHMS | frozenset(_EC_CURVES)
# RFC 7518 section 3.3: RSA keys of 2048 bits or larger MUST be used.
_MIN_RSA_BITS: Final = 2048


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ConfigError(
            f"unsupported JWT algorithm {algorithm!r} (use one of {', '.join(sorted(SUPPORTED_ALGORITHMS))})"
        )


def _check_asymmetric(algorithm: str, key: object, what: str) -> None:
    if algorithm in _RSA_ALGORITHMS:
        if not isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
            raise ConfigError(f"{algorithm} needs an RSA {what}")
        if key.key_size < _MIN_RSA_BITS:
            raise ConfigError(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
        return
    curve = _EC_CURVES[algorithm]
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) or not isinstance(key.curve, curve):
        raise ConfigError(f"{algorithm} needs an EC {what} on curve {curve.name}")


def _hmac_secret(algorithm: str, material: str | bytes) -> bytes:
    secret = material.encode() if isinstance(material, str) else material
    minimum = HMAC_ALGORITHMS[algorithm]
    if len(secret) < minimum:
        raise ConfigError(f"{algorithm} secrets must be at least {minimum} bytes long")
    if b"-----BEGIN" in secret:
        # A PEM document as an HMAC secret is the classic RS/HS confusion set-up: refuse it.
        raise ConfigError(f"{algorithm} needs a shared secret, not a PEM key")
    return secret


def load_verification_key(algorithm: str, material: str | bytes) -> VerificationKey:
    """Turn configured key material into what pyjwt verifies with.

    Args:
        algorithm: the app's pinned JWT algorithm.
        material: the HMAC secret, or a PEM public key.

    Raises:
        ConfigError: unsupported algorithm, short secret, or a key that does not fit it.
    """
    _check_algorithm(algorithm)
    if algorithm in HMAC_ALGORITHMS:
        return _hmac_secret(algorithm, material)
    pem = material.encode() if isinstance(material, str) else material
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{algorithm} needs a PEM public key (-----BEGIN PUBLIC KEY-----)") from exc
    _check_asymmetric(algorithm, key, "public key")
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)  # narrowed by the check
    return key


def load_signing_key(algorithm: str, material: str | bytes) -> SigningKey:
    """Load what ``realcast token`` signs with: the HMAC secret or a PEM private key.

    Raises:
        ConfigError: unsupported algorithm, or a key that does not fit it.
    """
    _check_algorithm(algorithm)
    if algorithm in HMAC_ALGORITHMS:
        return _hmac_secret(algorithm, material)
    pem = material.encode() if isinstance(material, str) else material
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{algorithm} tokens are signed with an unencrypted PEM private key") from exc
    _check_asymmetric(algorithm, key, "private key")
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key
