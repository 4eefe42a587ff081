"""RealCast: a self-hosted real-time engine for live-streaming platforms.

Layer: application, built on the public facade of ``engineio_min`` (``Server``, ``Namespace``,
``Socket``, ...) and nothing deeper. Start it with ``realcast serve`` or ``python -m realcast``;
the wire API is documented in ``the README (The RealCast API)``.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
