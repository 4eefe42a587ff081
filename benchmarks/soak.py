"""Soak: minutes of connect / chat / leave churn against `realcast serve`, sampled as it runs.

    .venv/bin/python benchmarks/soak.py --minutes 3            # writes results/soak.{json,md}

What it checks (issue 12): that a server under steady churn keeps a flat line. Every
``--interval`` seconds it samples the server process's RSS and open file descriptors (from
/proc), the round trip of an acked event from an idle probe client (an upper bound of the
server's event-loop lag: the generator runs on another core), and delivery so far. Before the
load starts and again after every client has left, it samples the idle server: RSS should come
back to within a few MB of where it started.

Load (one asyncio process on core 1; the server pinned to core 0, as in run.py):
* one long-lived observer per stream, which joins the chat and records every
  ``chat:message`` id it receives;
* ``--clients`` churners, each in a loop: connect over WebSocket (authenticated in the
  handshake), ``chat:join`` a random stream, send ``--messages`` ``chat:message`` events with
  acks at ``--rate`` per second, then close the socket (no goodbye: the server sees the
  transport close) and start again.
Delivery loss = messages the server acked whose id never reached their stream's observer
(counted after a drain at the end). Every wait has a timeout; a failed connect or a missing
ack is counted, never retried silently.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from websockets.asyncio.client import ClientConnection, connect

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import APP_ID, PORTS, SECRET, Server  # noqa: E402 - run.py lives next to this script

RESULTS = HERE / "results"
STEP_TIMEOUT = 10.0


def token(user: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "aud": APP_ID, "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")


@dataclass
class Tally:
    connects: int = 0
    connect_failures: int = 0
    sent: int = 0
    acked: dict[str, dict[str, float]] = field(default_factory=dict)  # stream -> message id -> when acked
    refused: int = 0  # acked with ok: false (rate limit, ...)
    ack_timeouts: int = 0
    received: dict[str, set[str]] = field(default_factory=dict)  # stream -> ids its observer saw
    live: int = 0


class Client:
    """A Socket.IO client over a raw WebSocket: acks, pings, and a hook per event."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.on_event: Any = None
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, port: int, user: str) -> Client:
        ws = await connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                           open_timeout=STEP_TIMEOUT, max_size=None, compression=None, ping_interval=None)
        opening = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
        assert isinstance(opening, str) and opening.startswith("0{"), opening
        await ws.send("40" + json.dumps({"token": token(user), "app_id": APP_ID}))
        client = cls(ws)
        return client

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                if not isinstance(frame, str):
                    continue
                if frame == "2":
                    await self.ws.send("3")
                elif frame.startswith("43"):
                    digits = frame[2:frame.index("[")]
                    future = self.acks.pop(int(digits), None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(frame[2 + len(digits):]))
                elif frame.startswith("42") and self.on_event is not None:
                    event, *args = json.loads(frame[2:])
                    self.on_event(event, args)

    async def call(self, event: str, payload: Any) -> Any:
        ack_id = self.next_id
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        await self.ws.send(f"42{ack_id}" + json.dumps([event, payload]))
        try:
            return (await asyncio.wait_for(future, STEP_TIMEOUT))[0]
        finally:
            self.acks.pop(ack_id, None)

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)


async def observer(port: int, stream: str, tally: Tally, ready: asyncio.Event) -> Client:
    client = await Client.open(port, f"observer-{stream}")
    seen = tally.received.setdefault(stream, set())

    def on_event(event: str, args: list[Any]) -> None:
        if event == "chat:message" and args:
            seen.add(args[0]["message_id"])

    client.on_event = on_event
    answer = await client.call("chat:join", {"stream_id": stream})
    assert answer.get("ok", True) is not False, answer
    ready.set()
    return client


async def churner(index: int, port: int, streams: list[str], tally: Tally, args: argparse.Namespace,
                  stop: asyncio.Event) -> None:
    rng = random.Random(index)
    pause = 1.0 / args.rate
    generation = 0
    while not stop.is_set():
        generation += 1
        stream = rng.choice(streams)
        try:
            client = await Client.open(port, f"user-{index}-{generation}")
        except Exception:
            tally.connect_failures += 1
            await asyncio.sleep(1.0)
            continue
        tally.connects += 1
        tally.live += 1
        try:
            await client.call("chat:join", {"stream_id": stream})
            for n in range(args.messages):
                if stop.is_set():
                    break
                tally.sent += 1
                try:
                    answer = await client.call("chat:message", {"stream_id": stream, "message": f"m{index}.{n}"})
                except TimeoutError:
                    tally.ack_timeouts += 1
                    continue
                if answer.get("ok"):
                    tally.acked.setdefault(stream, {})[answer["message_id"]] = time.monotonic()
                else:
                    tally.refused += 1
                await asyncio.sleep(pause * rng.uniform(0.5, 1.5))
        except Exception:
            tally.ack_timeouts += 1
        finally:
            tally.live -= 1
            await client.close()


def proc_sample(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open fds) of the server process."""
    rss_kb = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def probe_rtt(probe: Client, count: int = 5) -> float:
    """Worst ack round trip of ``count`` acked events from an idle client, in ms."""
    worst = 0.0
    for _ in range(count):
        started = time.perf_counter()
        await probe.call("chat:typing", {"stream_id": "probe"})
        worst = max(worst, (time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.05)
    return worst


def loss(tally: Tally) -> tuple[int, int]:
    acked = sum(len(ids) for ids in tally.acked.values())
    missing = sum(len(ids.keys() - tally.received.get(stream, set())) for stream, ids in tally.acked.items())
    return acked, missing


def lost_examples(tally: Tally, started: float, limit: int = 20) -> list[dict[str, Any]]:
    """Some acked messages that never reached their chat's observer, with when they were acked."""
    lost = [{"stream": stream, "message_id": message_id, "acked_at_s": round(at - started, 2)}
            for stream, ids in tally.acked.items()
            for message_id, at in ids.items() if message_id not in tally.received.get(stream, set())]
    return sorted(lost, key=lambda item: item["acked_at_s"])[:limit]


async def soak(args: argparse.Namespace, pid: int, port: int) -> dict[str, Any]:
    streams = [f"soak_{i}" for i in range(args.streams)]
    tally = Tally()
    samples: list[dict[str, Any]] = []
    started = time.monotonic()

    probe = await Client.open(port, "probe")
    await probe.call("chat:join", {"stream_id": "probe"})

    async def sample(phase: str) -> dict[str, Any]:
        rss, fds = proc_sample(pid)
        rtt = await probe_rtt(probe)
        acked, missing = loss(tally)
        row = {"t": round(time.monotonic() - started, 1), "phase": phase, "rss_mib": round(rss, 1), "fds": fds,
               "probe_rtt_ms": round(rtt, 2), "live_clients": tally.live, "connects": tally.connects,
               "connect_failures": tally.connect_failures, "sent": tally.sent, "acked": acked,
               "refused": tally.refused, "ack_timeouts": tally.ack_timeouts, "not_yet_delivered": missing}
        samples.append(row)
        print(json.dumps(row), flush=True)
        return row

    before = await sample("idle before")
    observers = []
    for stream in streams:
        ready = asyncio.Event()
        observers.append(await observer(port, stream, tally, ready))
    stop = asyncio.Event()
    churners = [asyncio.create_task(churner(i, port, streams, tally, args, stop)) for i in range(args.clients)]
    deadline = time.monotonic() + args.minutes * 60
    while time.monotonic() < deadline:
        await asyncio.sleep(min(args.interval, max(0.0, deadline - time.monotonic())))
        await sample("churn")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*churners), STEP_TIMEOUT * 3)
    await asyncio.sleep(2.0)  # drain: the last broadcasts reach the observers
    acked, missing = loss(tally)
    for client in observers:
        await client.close()
    await asyncio.sleep(args.settle)  # every connection closed; the server forgets them
    after = await sample("idle after")
    await probe.close()

    churn_rows = [row for row in samples if row["phase"] == "churn"]
    rss = [row["rss_mib"] for row in churn_rows]
    half = len(rss) // 2
    return {
        "meta": {"minutes": args.minutes, "clients": args.clients, "streams": args.streams,
                 "messages_per_session": args.messages, "rate_per_client": args.rate, "interval_s": args.interval},
        "summary": {
            "connects": tally.connects,
            "connect_failures": tally.connect_failures,
            "messages_acked": acked,
            "messages_lost": missing,
            "refused": tally.refused,
            "ack_timeouts": tally.ack_timeouts,
            "rss_idle_before_mib": before["rss_mib"],
            "rss_idle_after_mib": after["rss_mib"],
            "fds_idle_before": before["fds"],
            "fds_idle_after": after["fds"],
            # a flat line: the second half of the run holds no more than the first
            "rss_churn_first_half_median_mib": statistics.median(rss[:half]) if half else None,
            "rss_churn_second_half_median_mib": statistics.median(rss[half:]) if half else None,
            "rss_churn_max_mib": max(rss) if rss else None,
            "fds_churn_max": max(row["fds"] for row in churn_rows) if churn_rows else None,
            "probe_rtt_ms_median": round(statistics.median(row["probe_rtt_ms"] for row in churn_rows), 2)
            if churn_rows else None,
            "probe_rtt_ms_max": max(row["probe_rtt_ms"] for row in churn_rows) if churn_rows else None,
        },
        "lost_examples": lost_examples(tally, started),
        "samples": samples,
    }


def markdown(result: dict[str, Any]) -> str:
    meta, summary = result["meta"], result["summary"]
    lines = [
        "# RealCast soak (connect / chat / leave churn)",
        "",
        f"`benchmarks/soak.py --minutes {meta['minutes']} --clients {meta['clients']} --streams {meta['streams']}`: "
        f"{meta['clients']} churners, each connecting, joining one of {meta['streams']} chats, sending "
        f"{meta['messages_per_session']} acked messages at ~{meta['rate_per_client']}/s and leaving, in a loop; "
        "one observer per chat; server pinned to core 0, generator to core 1.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in summary.items()]
    lines += ["", "| t (s) | phase | RSS MiB | fds | probe RTT ms | live | connects | acked | pending |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['t']} | {r['phase']} | {r['rss_mib']} | {r['fds']} | {r['probe_rtt_ms']} | {r['live_clients']} | "
              f"{r['connects']} | {r['acked']} | {r['not_yet_delivered']} |" for r in result["samples"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=300, help="churners connected at any time")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5, help="messages per connection before it leaves")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per churner")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after everyone left before the last sample")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw").mkdir(exist_ok=True)
    server = Server("realcast", out / "raw" / "soak-server.log")  # raw/ is not committed
    try:
        # The generator on the other core (the server is pinned to core 0 by run.Server).
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {1})
        result = asyncio.run(soak(args, server.pid, PORTS["realcast"]))
    finally:
        server.stop()
    # Other processes on the machine skew the round trips; say how busy it was.
    result["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["meta"]["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                              text=True, cwd=HERE).stdout.strip()
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    (out / "soak.md").write_text(markdown(result))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
