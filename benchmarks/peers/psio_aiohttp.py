"""python-socketio 5.x peer under aiohttp (uvloop event loop), same app as the other peers.

BENCH_JWT_SECRET=... python benchmarks/peers/psio_aiohttp.py --port 8011
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uvloop
from aiohttp import web
from psio_common import make_server, parse_args


def main() -> None:
    args = parse_args(8011)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sio = make_server("aiohttp", args)
    app = web.Application()
    sio.attach(app)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
