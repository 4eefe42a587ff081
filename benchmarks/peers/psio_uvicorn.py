"""python-socketio 5.x peer as an ASGI app under uvicorn (uvloop + httptools), same app.

BENCH_JWT_SECRET=... python benchmarks/peers/psio_uvicorn.py --port 8012
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import socketio
import uvicorn
from psio_common import make_server, parse_args


def main() -> None:
    args = parse_args(8012)
    sio = make_server("asgi", args)
    app = socketio.ASGIApp(sio)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws=os.environ.get("BENCH_UVICORN_WS", "auto"),
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
