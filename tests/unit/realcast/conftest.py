"""Shared fixtures for realcast unit tests: a settable clock and generated keys."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# Make the repository root importable when pytest is run as a plain script (.venv/bin/pytest).
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from rc_fakes import FakeClock  # noqa: E402  (after the path fix)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _pem_pair(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@pytest.fixture(scope="session")
def rsa_pems() -> tuple[str, str]:
    """(private PEM, public PEM) of a 2048-bit RSA key."""
    return _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_pems() -> tuple[str, str]:
    """(private PEM, public PEM) of a P-256 key."""
    return _pem_pair(ec.generate_private_key(ec.SECP256R1()))
