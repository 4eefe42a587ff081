"""TLS for ``realcast serve --ssl-certfile/--ssl-keyfile``: the server's stdlib ``ssl`` context.

Layer: application (realcast); imports the standard library and ``errors``.

asyncio does the TLS (``loop.create_server(ssl=...)`` through engineio_min's ``Server.start``),
so the HTTP, polling and WebSocket code above it sees plain bytes: ``https://`` and ``wss://``
clients need nothing else. A TLS-terminating proxy in front (deploy/) remains the usual setup.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from .errors import ConfigError

__all__ = ["server_ssl_context"]


def server_ssl_context(certfile: Path, keyfile: Path | None = None) -> ssl.SSLContext:
    """A server context holding ``certfile``'s chain and its key (in ``keyfile``, or in the certfile).

    TLS 1.2 or newer with the standard library's default ciphers; ALPN offers only http/1.1
    (the front door speaks HTTP/1.1).

    Raises:
        ConfigError: a file cannot be read, is not PEM, or the key does not match the certificate.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    for name, path in (("ssl_certfile", certfile), ("ssl_keyfile", keyfile)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{name} {path}: no such file")
    try:
        # A key with a passphrase would make OpenSSL prompt on the terminal: refuse it instead.
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except ssl.SSLError as exc:
        what = f"{certfile} and {keyfile}" if keyfile is not None else str(certfile)
        raise ConfigError(
            f"ssl_certfile/ssl_keyfile: {what} are not a PEM certificate and its unencrypted private key "
            f"({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read TLS files {certfile} / {keyfile}: {exc.strerror}") from None
    return context


def _no_password() -> str:
    raise ConfigError("ssl_keyfile is encrypted: give an unencrypted private key")
