"""Socket.IO v4 load generator for the RealCast benchmarks (one process, one core).

Every client is a raw non-blocking TCP socket driven by one `select.epoll` loop (no
asyncio, no Socket.IO library): the HTTP upgrade, the Engine.IO OPEN, the Socket.IO
CONNECT with `auth: {token, app_id}` and `chat:join` are written by hand. Client frames
are masked (RFC 6455); server frames are unmasked and are *counted* by skipping each
frame by its header length, without looking at the payload. Pings (`2`) are answered
with a masked `3`. A few probe receivers decode payloads and read the send time that
the sender put in the message text (same process, same monotonic clock) to get the
end-to-end latency.

Receivers are read in batches: in the fan-out scenario the loop sleeps `--batch-us`
after each pass, so each socket read returns many frames and the per-read Python
cost is spread over them. The generator reports its own CPU share
(`resource.getrusage`) next to the server's (`/proc/<pid>/stat`), over the same
measurement window, so a reader can see whether it was the bottleneck.

Scenarios (`--mode`):
  fanout    R receivers + S senders in one room; each sender sends its next
            `chat:message` when its previous one came back to it (closed loop, at most
            `--rate` msg/s per sender). Measures deliveries/s, server CPU per delivery.
  latency   R receivers (P probes) + senders sending `--total-rate` msg/s open-loop.
  connect   N full connects (TCP + WS upgrade + CONNECT with JWT + chat:join -> chat:joined),
            `--window` in flight. Measures connects/s.
  idle      N idle joined clients; server RSS before/after -> RSS per client.
  capacity  N idle joined clients held for `--hold` s; checks that every client keeps
            receiving pings on time (gap <= pingInterval + slack) and stays connected.

Cluster runs (benchmarks/cluster_run.py): `--extra-ports` spreads the receivers over several
nodes (the first half of the join order on `--port`, ...), senders always on `--port`; probe
latencies are also reported per node (`latency_by_port`). `--server-pid` takes a comma-separated
list: the server CPU and RSS figures are then the sums over those processes.

Prints one JSON object (the result) on the last line of stdout. Only ever connects to
127.0.0.0/8. Every phase has a deadline.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import heapq
import hmac
import json
import os
import re
import resource
import select
import socket
import struct
import sys
import time
from typing import Any

IP_BIND_ADDRESS_NO_PORT = 24
CLK_TCK = os.sysconf("SC_CLK_TCK")

ST_CONNECTING, ST_HTTP, ST_OPEN, ST_SIOCONN, ST_JOIN, ST_JOINED, ST_CLOSED = range(7)
K_RECV, K_PROBE, K_SEND = 0, 1, 2

RX_T = re.compile(rb"~s(\d+)q(\d+)~ t(\d+)")
LINGER0 = struct.pack("ii", 1, 0)


# ----------------------------------------------------------------------------- helpers


def b64url(b: bytes) -> bytes:
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def make_jwt(secret: bytes, sub: str, name: str, aud: str, ttl: int = 3600) -> str:
    head = b64url(b'{"alg":"HS256","typ":"JWT"}')
    now = int(time.time())
    body = b64url(json.dumps({"sub": sub, "name": name, "aud": aud, "iat": now, "exp": now + ttl}).encode())
    signing = head + b"." + body
    sig = b64url(hmac.new(secret, signing, hashlib.sha256).digest())
    return (signing + b"." + sig).decode()


def mask_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One FIN client frame with a random 4-byte mask key."""
    n = len(payload)
    if n < 126:
        hdr = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        hdr = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        hdr = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    if n == 0:
        return hdr + key
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
    return hdr + key + masked


PONG = mask_frame(b"3")
PING_FRAME = b"\x81\x012"  # unmasked server text frame "2"
CHAT_PAT = b'42["chat:message"'  # 17 bytes


def proc_cpu(pid: int) -> float:
    """utime+stime (s) of a process, all its threads included."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def server_cpu(pids: list[int]) -> float:
    """utime+stime (s) summed over the server processes (0 when none is given)."""
    return sum(proc_cpu(pid) for pid in pids)


def server_rss(pids: list[int]) -> int | None:
    return sum(proc_rss(pid) for pid in pids) if pids else None


def proc_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_times() -> dict[str, list[int]]:
    """Per-core jiffies from /proc/stat: [busy, idle] (busy includes irq/softirq/steal)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                v = [int(x) for x in parts[1:9]]
                idle = v[3] + v[4]
                out[parts[0]] = [sum(v) - idle, idle]
    return out


def core_busy(t0: dict[str, list[int]], t1: dict[str, list[int]]) -> dict[str, float]:
    res = {}
    for k in t1:
        busy = t1[k][0] - t0[k][0]
        total = busy + t1[k][1] - t0[k][1]
        res[k] = round(busy / total, 3) if total else 0.0
    return res


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(sorted_vals: list[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, round(q / 100.0 * (len(sorted_vals) - 1))))
    return sorted_vals[i]


# ----------------------------------------------------------------------------- client


class Conn:
    __slots__ = (
        "echo_deadline",
        "ep",
        "fd",
        "frag",
        "idx",
        "inbuf",
        "kind",
        "last_ping",
        "marker",
        "max_gap",
        "next_send",
        "out",
        "pings",
        "port",
        "seq",
        "skip",
        "sock",
        "state",
        "t0",
        "t_joined",
        "t_sent",
        "tail",
        "waiting",
    )

    def __init__(self, sock: socket.socket, idx: int, kind: int, port: int = 0) -> None:
        self.sock = sock
        self.port = port
        self.fd = sock.fileno()
        self.idx = idx
        self.kind = kind
        self.state = ST_CONNECTING
        self.inbuf = bytearray()
        self.skip = 0
        self.frag = b""
        self.out = b""
        self.t0 = 0.0
        self.t_joined = 0.0
        self.last_ping = 0.0
        self.max_gap = 0.0
        self.pings = 0
        self.seq = 0
        self.waiting = False
        self.marker = b""
        self.tail = b""
        self.next_send = 0.0
        self.echo_deadline = 0.0
        self.t_sent = 0.0
        self.ep: Any = None


class LoadGen:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.ep = select.epoll()
        # Senders and probes, once joined, move to a second epoll (registered in the first),
        # polled every ~1 ms even while the receivers are read in batches: the senders' pacing
        # and echoes and the probes' timestamps are then not delayed by the batching.
        self.ep_fast = select.epoll()
        self.fast_fd = self.ep_fast.fileno()
        self.ep.register(self.fast_fd, select.EPOLLIN)
        self.conns: dict[int, Conn] = {}
        self.rbuf = bytearray(1 << 20)
        self.rmv = memoryview(self.rbuf)
        self.secret = os.environ.get("BENCH_JWT_SECRET", "bench-secret").encode()
        self.src_ips = [f"{a.src_prefix}{i}" for i in range(a.src_first, a.src_first + a.src_ips)]
        self.path = a.path.encode()
        self.ports = [a.port] + [int(p) for p in a.extra_ports.split(",") if p]
        # receivers are split over the ports by join order (index), not round robin: the
        # probes sit at regular indexes and must land on every node
        self.n_receivers = a.receivers if a.mode in ("fanout", "latency") else a.clients
        self.stream = a.stream
        # counters
        self.deliveries = 0
        self.pings_answered = 0
        self.connect_fail = 0
        self.fail_reasons: dict[str, int] = {}
        self.disconnects = 0
        self.joined = 0
        self.in_flight = 0
        self.connect_times: list[float] = []
        self.latencies_ns: list[int] = []
        self.latencies_by_port: dict[int, list[int]] = {}
        self.measuring_latency = False
        self.ping_interval = 25.0
        self.sent = 0
        self.echoed = 0
        self.echo_timeouts = 0
        self.rtt_sum = 0.0
        self.rtt_n = 0
        self.senders: list[Conn] = []
        self.timers: list[tuple[float, int, Conn]] = []
        self.pending_new: list[tuple[int, int]] = []  # (idx, kind) still to connect
        self.all: list[Conn] = []
        self.tokens: dict[int, str] = {}  # minted ahead of a timed phase

    # ------------------------------------------------------------------ connecting

    def start_conn(self, idx: int, kind: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((self.src_ips[idx % len(self.src_ips)], 0))
        c = Conn(s, idx, kind, self.port_for(idx, kind))
        c.ep = self.ep
        c.t0 = time.perf_counter()
        err = s.connect_ex((self.a.host, c.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.fail(None, f"connect errno {err}")
            return
        self.conns[c.fd] = c
        self.all.append(c)
        self.in_flight += 1
        self.ep.register(c.fd, select.EPOLLOUT)

    def port_for(self, idx: int, kind: int) -> int:
        if kind == K_SEND or len(self.ports) == 1:
            return self.a.port
        return self.ports[min(len(self.ports) - 1, idx * len(self.ports) // max(1, self.n_receivers))]

    def pump_connects(self) -> None:
        while self.pending_new and self.in_flight < self.a.window:
            idx, kind = self.pending_new.pop()
            self.start_conn(idx, kind)

    def fail(self, c: Conn | None, reason: str) -> None:
        self.connect_fail += 1
        self.fail_reasons[reason] = self.fail_reasons.get(reason, 0) + 1
        if c is not None:
            self.in_flight -= 1
            self.drop(c)

    def drop(self, c: Conn) -> None:
        if c.state == ST_CLOSED:
            return
        c.state = ST_CLOSED
        self.conns.pop(c.fd, None)
        with contextlib.suppress(OSError):
            c.ep.unregister(c.fd)
        with contextlib.suppress(OSError):  # RST on close: no TIME_WAIT left behind
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.sock.close()

    def on_writable(self, c: Conn) -> None:
        if c.state == ST_CONNECTING:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(c, f"connect {errno.errorcode.get(err, err)}")
                return
            key = base64.b64encode(os.urandom(16))
            req = (
                b"GET "
                + self.path
                + b"?EIO=4&transport=websocket HTTP/1.1\r\nHost: "
                + f"{self.a.host}:{c.port}".encode()
                + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                + key
                + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            c.state = ST_HTTP
            c.ep.modify(c.fd, select.EPOLLIN)
            self.send(c, req)
            return
        if c.out:
            data, c.out = c.out, b""
            c.ep.modify(c.fd, select.EPOLLIN)
            self.send(c, data)

    def send(self, c: Conn, data: bytes) -> None:
        if c.out:
            c.out += data
            return
        try:
            n = c.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self.on_closed(c)
            return
        if n < len(data):
            c.out = data[n:]
            c.ep.modify(c.fd, select.EPOLLIN | select.EPOLLOUT)

    def on_closed(self, c: Conn) -> None:
        if c.state == ST_CLOSED:
            return
        if c.state == ST_JOINED:
            self.disconnects += 1
            self.joined -= 1
            self.drop(c)
        else:
            self.fail(c, f"closed in state {c.state}")

    # ------------------------------------------------------------------ handshake path

    def handshake_data(self, c: Conn, n: int, now: float) -> None:
        buf = c.inbuf
        buf += self.rmv[:n]
        if c.state == ST_HTTP:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 16384:
                    self.fail(c, "bad http response")
                return
            status = bytes(buf[:12])
            if status != b"HTTP/1.1 101":
                self.fail(c, "http " + status[9:12].decode("latin-1", "replace"))
                return
            del buf[: end + 4]
            c.state = ST_OPEN
        i = 0
        ln = len(buf)
        while c.state != ST_JOINED and i + 2 <= ln:
            b0 = buf[i]
            plen = buf[i + 1] & 127
            h = 2
            if plen == 126:
                if i + 4 > ln:
                    break
                plen = (buf[i + 2] << 8) | buf[i + 3]
                h = 4
            elif plen == 127:
                if i + 10 > ln:
                    break
                plen = int.from_bytes(buf[i + 2 : i + 10], "big")
                h = 10
            if i + h + plen > ln:
                break
            payload = bytes(buf[i + h : i + h + plen])
            i += h + plen
            op = b0 & 15
            if op == 8:
                self.fail(c, "ws close during handshake")
                return
            if op == 9:
                self.send(c, mask_frame(payload, 0xA))
                continue
            if op != 1:
                continue
            if payload == b"2":
                self.send(c, PONG)
                self.on_ping(c, now)
                continue
            if c.state == ST_OPEN and payload[:1] == b"0":
                with contextlib.suppress(ValueError, KeyError):
                    self.ping_interval = json.loads(payload[1:])["pingInterval"] / 1000.0
                uid = c.idx + self.a.user_offset
                token = self.tokens.pop(c.idx, None) or make_jwt(self.secret, f"u{uid}", f"user{uid}", self.a.app_id)
                auth = {"token": token, "app_id": self.a.app_id}
                self.send(c, mask_frame(b"40" + json.dumps(auth, separators=(",", ":")).encode()))
                c.state = ST_SIOCONN
            elif c.state == ST_SIOCONN and payload[:2] == b"40":
                uid = c.idx + self.a.user_offset
                who = {"stream_id": self.stream_for(c), "user_id": f"u{uid}", "username": f"user{uid}"}
                join = json.dumps(["chat:join", who], separators=(",", ":"))
                self.send(c, mask_frame(b"42" + join.encode()))
                c.state = ST_JOIN
            elif payload[:2] == b"44":
                self.fail(c, "connect_error " + payload[2:80].decode("utf-8", "replace"))
                return
            elif c.state == ST_JOIN and payload.startswith(b'42["chat:joined"'):
                c.state = ST_JOINED
                c.t_joined = now
                c.last_ping = now
                self.in_flight -= 1
                self.joined += 1
                self.connect_times.append(now - c.t0)
                if c.kind == K_SEND:
                    self.senders.append(c)
                if c.kind != K_RECV:
                    c.ep.unregister(c.fd)
                    c.ep = self.ep_fast
                    c.ep.register(c.fd, select.EPOLLIN | (select.EPOLLOUT if c.out else 0))
        if c.state == ST_JOINED:
            rest = bytes(buf[i:])
            c.inbuf = bytearray()
            if rest:
                if c.kind == K_PROBE:
                    c.inbuf += rest
                else:
                    c.frag = rest
        else:
            del buf[:i]

    def stream_for(self, c: Conn) -> str:
        if self.a.rooms <= 1:
            return self.stream
        return f"{self.stream}_{c.idx % self.a.rooms}"

    def on_ping(self, c: Conn, now: float) -> None:
        self.pings_answered += 1
        c.pings += 1
        gap = now - c.last_ping
        if c.last_ping and gap > c.max_gap:
            c.max_gap = gap
        c.last_ping = now

    # ------------------------------------------------------------------ joined fast path

    def scan(self, c: Conn, b: Any, n: int, now: float) -> int:
        """Count the chat:message frames in b[:n], skipping each frame by its header length; answer pings."""
        i = c.skip
        frames = 0
        while i + 2 <= n:
            plen = b[i + 1] & 127
            if plen < 126:
                h = 2
            elif plen == 126:
                if i + 4 > n:
                    break
                plen = (b[i + 2] << 8) | b[i + 3]
                h = 4
            else:
                if i + 10 > n:
                    break
                plen = int.from_bytes(b[i + 2 : i + 10], "big")
                h = 10
            op = b[i] & 15
            if plen < 4 or op >= 8:  # Engine.IO ping or a control frame: needs its payload in hand
                if i + h + plen > n:
                    break
                if op == 1 and plen == 1 and b[i + h] == 0x32:
                    self.send(c, PONG)
                    self.on_ping(c, now)
                elif op == 9:  # WebSocket ping (uvicorn/websockets sends them): pong, same payload
                    self.send(c, mask_frame(bytes(b[i + h : i + h + plen]), 0xA))
                elif op == 8:
                    self.on_closed(c)
                    return frames
            elif i + h + 10 > n or (b[i + h + 4] == 0x63 and b[i + h + 9] == 0x6D):
                # counts `42["chat:message"...` only (byte 4 'c', byte 9 'm'); other events
                # (viewer.joined, viewer.count.update, ...) are skipped uncounted. A frame whose
                # start is cut by the read is counted: rare, and nothing else is that busy.
                frames += 1
            i += h + plen
        if i > n:
            c.skip = i - n
            c.frag = b""
        else:
            c.skip = 0
            c.frag = bytes(b[i:n]) if i < n else b""
        return frames

    def ws_pings(self, c: Conn, n: int) -> None:
        """Fast path: answer WebSocket ping frames (0x89, len <= 125) found in rbuf[:n].

        Without frame boundaries a 0x89 can also be the low byte of a 16-bit frame length; then
        the next byte is the payload's first, "4" (0x34), which is skipped. Any other false match
        costs an unsolicited pong, which RFC 6455 allows.
        """
        b = self.rbuf
        j = b.find(0x89, 0, n)
        while 0 <= j < n - 1:
            ln = b[j + 1]
            if ln <= 125 and ln != 0x34 and j + 2 + ln <= n:
                self.send(c, mask_frame(bytes(b[j + 2 : j + 2 + ln]), 0xA))
            j = b.find(0x89, j + 1, n)

    def probe_data(self, c: Conn, n: int, now: float, now_ns: int) -> None:
        buf = c.inbuf
        buf += self.rmv[:n]
        i = 0
        ln = len(buf)
        while i + 2 <= ln:
            plen = buf[i + 1] & 127
            h = 2
            if plen == 126:
                if i + 4 > ln:
                    break
                plen = (buf[i + 2] << 8) | buf[i + 3]
                h = 4
            elif plen == 127:
                if i + 10 > ln:
                    break
                plen = int.from_bytes(buf[i + 2 : i + 10], "big")
                h = 10
            if i + h + plen > ln:
                break
            op = buf[i] & 15
            start = i + h
            i = start + plen
            if op == 8:
                self.on_closed(c)
                return
            if op == 9:
                self.send(c, mask_frame(bytes(buf[start:i]), 0xA))
                continue
            if plen == 1 and buf[start] == 0x32:
                self.send(c, PONG)
                self.on_ping(c, now)
                continue
            if plen >= 4 and buf.startswith(b'42["chat:message"', start):
                self.deliveries += 1
                if self.measuring_latency:
                    m = RX_T.search(buf, start, i)
                    if m is not None:
                        lat = now_ns - int(m.group(3))
                        self.latencies_ns.append(lat)
                        self.latencies_by_port.setdefault(c.port, []).append(lat)
        del buf[:i]

    def sender_data(self, c: Conn, n: int, now: float) -> None:
        if c.frag:
            data: Any = c.frag + bytes(self.rmv[:n])
            self.deliveries += self.scan(c, data, len(data), now)
        else:
            self.deliveries += self.scan(c, self.rbuf, n, now)
        if c.waiting:
            m = c.marker
            found = self.rbuf.find(m, 0, n) >= 0
            if not found and c.tail:
                found = (c.tail + bytes(self.rmv[: len(m)])).find(m) >= 0
            if found:
                c.waiting = False
                self.echoed += 1
                self.rtt_sum += now - c.t_sent
                self.rtt_n += 1
                c.tail = b""
                heapq.heappush(self.timers, (max(now, c.next_send), c.idx, c))
            else:
                c.tail = bytes(self.rmv[max(0, n - len(m) + 1) : n])

    # ------------------------------------------------------------------ sending

    def send_chat(self, c: Conn, now: float) -> None:
        c.seq += 1
        c.marker = b"~s%dq%d~" % (c.idx, c.seq)
        text = f"{c.marker.decode()} t{time.perf_counter_ns()} hello from the bench"
        payload = (
            b'42["chat:message",{"stream_id":"'
            + self.stream_for(c).encode()
            + b'","user_id":"u%d","username":"user%d","message":"' % (c.idx, c.idx)
            + text.encode()
            + b'"}]'
        )
        c.waiting = self.a.mode == "fanout"
        c.tail = b""
        c.echo_deadline = now + self.a.echo_timeout
        c.t_sent = now
        c.next_send = now + 1.0 / self.a.rate if self.a.rate > 0 else now
        self.sent += 1
        self.send(c, mask_frame(payload))

    def fire_timers(self, now: float, sending: bool) -> None:
        t = self.timers
        while t and t[0][0] <= now:
            _, _, c = heapq.heappop(t)
            if c.state != ST_JOINED or not sending:
                continue
            self.send_chat(c, now)
            if self.a.mode == "latency":
                heapq.heappush(t, (c.next_send, c.idx, c))

    def check_echo_timeouts(self, now: float) -> None:
        for c in self.senders:
            if c.waiting and now > c.echo_deadline:
                c.waiting = False
                self.echo_timeouts += 1
                heapq.heappush(self.timers, (now, c.idx, c))

    # ------------------------------------------------------------------ loop

    def loop(self, until: Any, deadline: float, batch_s: float = 0.0, sending: bool = False) -> bool:
        """Run until until() is true (-> True) or the deadline passes (-> False).

        batch_s > 0: after each pass over the main epoll, spend batch_s polling only the fast
        one (senders, probes), so that each receiver read returns many frames.
        """
        ep_poll = self.ep.poll
        fast_poll = self.ep_fast.poll
        process = self.process
        perf = time.perf_counter
        last_echo_check = 0.0
        while True:
            now = perf()
            if until():
                return True
            if now >= deadline:
                return False
            if self.pending_new:
                self.pump_connects()
            if self.timers:
                self.fire_timers(now, sending)
            if sending and now - last_echo_check > 0.5:
                self.check_echo_timeouts(now)
                last_echo_check = now
            timeout = 0.0 if batch_s else 0.02
            if self.timers and sending:
                timeout = max(0.0, min(timeout, self.timers[0][0] - now))
            process(ep_poll(timeout, 16384))
            if batch_s:
                end = perf() + batch_s
                while True:
                    now = perf()
                    if self.timers:
                        self.fire_timers(now, sending)
                    rem = end - now
                    if rem <= 0:
                        break
                    t = min(rem, 0.001)
                    if self.timers and sending:
                        t = max(0.0, min(t, self.timers[0][0] - now))
                    process(fast_poll(t, 1024))

    def process(self, events: list[tuple[int, int]], fast_inner: bool = False) -> None:
        conns_get = self.conns.get
        recv_into = socket.socket.recv_into
        rbuf = self.rbuf
        rmv = self.rmv
        scan = self.scan
        fast = not self.a.exact_count
        fast_fd = self.fast_fd
        EPOLLOUT = select.EPOLLOUT
        READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
        now = time.perf_counter()
        now_ns = time.perf_counter_ns()
        dels = 0
        n_ev = 0
        if not fast_inner and len(events) > 1:
            # senders and probes first, and again every 64 sockets: their timestamps must not
            # wait behind the draining of hundreds of receivers
            self.process(self.ep_fast.poll(0, 1024), True)
        for fd, ev in events:
            if fd == fast_fd:
                if not fast_inner:
                    self.process(self.ep_fast.poll(0, 1024), True)
                continue
            n_ev += 1
            if not n_ev & 63 and not fast_inner:
                self.deliveries += dels
                dels = 0
                self.process(self.ep_fast.poll(0, 1024), True)
                now = time.perf_counter()
            c = conns_get(fd)
            if c is None:
                continue
            if ev & EPOLLOUT:
                self.on_writable(c)
                if c.state == ST_CLOSED:
                    continue
            if not ev & READABLE:
                continue
            try:
                n = recv_into(c.sock, rbuf)
            except BlockingIOError:
                continue
            except OSError:
                self.on_closed(c)
                continue
            if n == 0:
                self.on_closed(c)
                continue
            if c.state == ST_JOINED:
                k = c.kind
                if k == K_RECV:
                    if fast:
                        # Count `42["chat:message"` with bytes.count (C speed) instead of
                        # walking the frames; only our own texts travel in the payloads,
                        # so the pattern cannot appear anywhere else. c.frag keeps the
                        # last 16 bytes to catch a pattern (or a ping) cut by the read.
                        dels += rbuf.count(CHAT_PAT, 0, n)
                        t = c.frag
                        if t:
                            dels += (t[-16:] + bytes(rmv[:16])).count(CHAT_PAT)
                        if rbuf.find(PING_FRAME, 0, n) >= 0 or (t and PING_FRAME in t[-2:] + bytes(rmv[:2])):
                            self.send(c, PONG)
                            self.on_ping(c, now)
                        if rbuf.find(0x89, 0, n) >= 0:
                            self.ws_pings(c, n)
                        c.frag = bytes(rmv[n - 16 : n]) if n >= 16 else (t + bytes(rmv[:n]))[-16:]
                    elif c.frag:
                        data = c.frag + bytes(rmv[:n])
                        dels += scan(c, data, len(data), now)
                    else:
                        dels += scan(c, rbuf, n, now)
                elif k == K_SEND:
                    self.sender_data(c, n, now)
                else:
                    self.probe_data(c, n, now, now_ns)
            else:
                self.handshake_data(c, n, now)
        self.deliveries += dels

    # ------------------------------------------------------------------ phases

    def connect_all(self, specs: list[tuple[int, int]], deadline: float, batch_s: float = 0.0) -> float:
        """Connect and join every (idx, kind); returns the elapsed seconds."""
        t0 = time.perf_counter()
        target = self.joined + len(specs)
        self.pending_new = list(reversed(specs))
        fails0 = self.connect_fail
        self.loop(
            lambda: self.joined + (self.connect_fail - fails0) >= target and self.in_flight == 0, deadline, batch_s
        )
        return time.perf_counter() - t0

    def close_all(self) -> None:
        for c in list(self.conns.values()):
            self.drop(c)

    def base_result(self) -> dict[str, Any]:
        return {
            "mode": self.a.mode,
            "joined": self.joined,
            "connect_fail": self.connect_fail,
            "fail_reasons": dict(sorted(self.fail_reasons.items(), key=lambda kv: -kv[1])[:5]),
            "disconnects": self.disconnects,
            "pings_answered": self.pings_answered,
        }


# ----------------------------------------------------------------------------- scenarios


def lat_summary(lat_ns: list[int]) -> dict[str, Any]:
    v = sorted(x / 1e6 for x in lat_ns)
    return {
        "samples": len(v),
        "p50_ms": pct(v, 50),
        "p90_ms": pct(v, 90),
        "p99_ms": pct(v, 99),
        "max_ms": v[-1] if v else None,
    }


def run_fanout(g: LoadGen, a: argparse.Namespace, deadline: float) -> dict[str, Any]:
    R, S, P = a.receivers, a.senders, min(a.probes, a.receivers)
    probe_every = max(1, R // max(P, 1))
    specs = []
    for i in range(R):
        kind = K_PROBE if (P and i % probe_every == probe_every // 2 and i // probe_every < P) else K_RECV
        specs.append((i, kind))
    specs += [(R + j, K_SEND) for j in range(S)]
    room = R + S
    # Read each socket at most ~1/batch times a second: the per-read cost is a syscall
    # (a few us here), so reads, not frames, are what the generator pays for.
    batch = a.batch_us / 1e6 if a.batch_us >= 0 else min(a.max_batch, max(0.002, room / a.reads_per_s))
    # Joining is not timed here; read in batches too, since a server may tell the whole room
    # about every join (RealCast's viewer.joined), N^2 frames for N joins.
    cpu_s0, cpu_g0 = server_cpu(a.server_pid), self_cpu()
    t_conn = g.connect_all(specs, min(deadline, time.perf_counter() + a.connect_deadline), min(batch, 0.005))
    res = g.base_result()
    res["connect_s"] = t_conn
    res["connect_server_cpu_share"] = (server_cpu(a.server_pid) - cpu_s0) / t_conn
    res["connect_gen_cpu_share"] = (self_cpu() - cpu_g0) / t_conn
    if g.joined < len(specs):
        res["error"] = f"only {g.joined}/{len(specs)} clients joined"
        return res
    now = time.perf_counter()
    if a.mode == "fanout":
        for j, c in enumerate(g.senders):
            heapq.heappush(g.timers, (now + j * 0.2 / max(S, 1), c.idx, c))
        res["batch_s"] = batch
    else:
        spacing = 1.0 / a.total_rate
        for j, c in enumerate(g.senders):
            heapq.heappush(g.timers, (now + 0.2 + j * spacing, c.idx, c))
        a.rate = a.total_rate / S
        # receivers drained every 10 ms; senders and probes polled in between (see loop())
        batch = 0.01
    # warm-up: at least --warmup s and, in fan-out, until every sender has had one echo back
    # (a full round through the server's queue: steady state), at most --max-warmup s
    g.loop(lambda: False, min(deadline, now + a.warmup), batch, sending=True)
    if a.mode == "fanout":
        g.loop(
            lambda: all(c.seq >= 2 for c in g.senders),
            min(deadline, now + max(a.warmup, a.max_warmup)),
            batch,
            sending=True,
        )
    res["warmup_s"] = time.perf_counter() - now
    # Measurement window: --duration, but at least 3 echo round trips (a server that delivers
    # in waves, one wave per round, needs several waves in the window), at most --max-window.
    window = a.duration
    if a.mode == "fanout" and g.rtt_n:
        window = min(max(a.duration, 3 * g.rtt_sum / g.rtt_n), max(a.duration, a.max_window))
    d0, s0, e0 = g.deliveries, g.sent, g.echoed
    g.rtt_sum, g.rtt_n = 0.0, 0
    cpu_s0 = server_cpu(a.server_pid)
    cpu_g0 = self_cpu()
    cores0 = cpu_times()
    g.latencies_ns.clear()
    g.latencies_by_port.clear()
    g.measuring_latency = True
    t0 = time.perf_counter()
    g.loop(lambda: False, min(deadline, t0 + window), batch, sending=True)
    t1 = time.perf_counter()
    g.measuring_latency = False
    cpu_g1 = self_cpu()
    cpu_s1 = server_cpu(a.server_pid)
    cores1 = cpu_times()
    wall = t1 - t0
    dels = g.deliveries - d0
    res.update(
        {
            "room_size": room,
            "receivers": R,
            "senders": S,
            "probes": P,
            "window_s": wall,
            "deliveries": dels,
            "deliveries_per_s": dels / wall,
            "messages_sent": g.sent - s0,
            "messages_per_s": (g.sent - s0) / wall,
            "offered_cap_msgs_per_s": S * a.rate,
            # mean time from a sender's send to its own echo (closed loop, fan-out only)
            "echo_rtt_mean_s": g.rtt_sum / g.rtt_n if g.rtt_n else None,
            # the senders waited mostly on their 1/rate timer, not on delivery: not saturated
            "capped": bool(g.rtt_n) and g.rtt_sum / g.rtt_n < 0.5 / a.rate,
            "echoes": g.echoed - e0,
            "echo_timeouts": g.echo_timeouts,
            "server_cpu_s": cpu_s1 - cpu_s0,
            "server_cpu_share": (cpu_s1 - cpu_s0) / wall,
            "server_cpu_s_per_1m_deliveries": (cpu_s1 - cpu_s0) / dels * 1e6 if dels else None,
            "gen_cpu_share": (cpu_g1 - cpu_g0) / wall,
            "core_busy": core_busy(cores0, cores1),
            "server_rss": server_rss(a.server_pid),
            "latency": lat_summary(g.latencies_ns),
            "latency_by_port": {str(p): lat_summary(v) for p, v in sorted(g.latencies_by_port.items())},
        }
    )
    if a.latency_samples_out:
        with open(a.latency_samples_out, "w") as f:
            json.dump([round(x / 1e6, 4) for x in g.latencies_ns], f)
    # drain: stop sending, let in-flight echoes arrive (bounded)
    g.loop(lambda: not any(c.waiting for c in g.senders), min(deadline, time.perf_counter() + 3.0), batch)
    res["disconnects"] = g.disconnects
    return res


def run_connect(g: LoadGen, a: argparse.Namespace, deadline: float) -> dict[str, Any]:
    specs = [(i, K_RECV) for i in range(a.clients)]
    # tokens are minted before the clock starts: the client's cost, not the server's
    uids = {i: i + a.user_offset for i in range(a.clients)}
    g.tokens = {i: make_jwt(g.secret, f"u{u}", f"user{u}", a.app_id) for i, u in uids.items()}
    cpu_g0 = self_cpu()
    cpu_s0 = server_cpu(a.server_pid)
    cores0 = cpu_times()
    t = g.connect_all(specs, min(deadline, time.perf_counter() + a.connect_deadline))
    cpu_g1 = self_cpu()
    cpu_s1 = server_cpu(a.server_pid)
    res = g.base_result()
    ct = sorted(g.connect_times)
    res.update(
        {
            "clients": a.clients,
            "window": a.window,
            "elapsed_s": t,
            "connects_per_s": g.joined / t if t > 0 else None,
            "connect_p50_ms": (pct(ct, 50) or 0) * 1e3,
            "connect_p99_ms": (pct(ct, 99) or 0) * 1e3,
            "server_cpu_share": (cpu_s1 - cpu_s0) / t if t > 0 else None,
            "gen_cpu_share": (cpu_g1 - cpu_g0) / t if t > 0 else None,
            "core_busy": core_busy(cores0, cpu_times()),
        }
    )
    return res


def run_idle(g: LoadGen, a: argparse.Namespace, deadline: float) -> dict[str, Any]:
    rss0 = server_rss(a.server_pid) or 0
    specs = [(i, K_RECV) for i in range(a.clients)]
    t = g.connect_all(specs, min(deadline, time.perf_counter() + a.connect_deadline))
    g.loop(lambda: False, min(deadline, time.perf_counter() + a.settle))
    rss1 = server_rss(a.server_pid) or 0
    res = g.base_result()
    res.update(
        {
            "clients": a.clients,
            "connect_s": t,
            "rss_before": rss0,
            "rss_after": rss1,
            "rss_per_client": (rss1 - rss0) / g.joined if g.joined else None,
        }
    )
    return res


def run_capacity(g: LoadGen, a: argparse.Namespace, deadline: float) -> dict[str, Any]:
    specs = [(i, K_RECV) for i in range(a.clients)]
    t = g.connect_all(specs, min(deadline, time.perf_counter() + a.connect_deadline))
    t_hold0 = time.perf_counter()
    hold = a.hold if a.hold > 0 else 2 * g.ping_interval + 5
    g.loop(lambda: False, min(deadline, t_hold0 + hold))
    t_end = time.perf_counter()
    interval = g.ping_interval
    slack = max(1.0, 0.1 * interval)
    alive = [c for c in g.all if c.state == ST_JOINED]
    on_time = 0
    worst_gap = 0.0
    for c in alive:
        # gaps between pings, the first one counted from chat:joined, and the time since the last
        # ping (a ping that never came is late too)
        gap = max(c.max_gap, t_end - c.last_ping)
        worst_gap = max(worst_gap, gap)
        if gap <= interval + slack:
            on_time += 1
    res = g.base_result()
    res.update(
        {
            "clients": a.clients,
            "connect_s": t,
            "hold_s": t_end - t_hold0,
            "ping_interval_s": interval,
            "alive": len(alive),
            "on_time": on_time,
            "worst_ping_gap_s": worst_gap,
            "server_rss": server_rss(a.server_pid),
        }
    )
    return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["fanout", "latency", "connect", "idle", "capacity"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/socket.io/")
    p.add_argument("--app-id", default=os.environ.get("BENCH_APP_ID", "app_bench"))
    p.add_argument("--stream", default="stream_bench")
    p.add_argument("--rooms", type=int, default=1, help="idle/connect: spread clients over this many rooms")
    p.add_argument(
        "--server-pid",
        type=lambda v: [int(x) for x in v.split(",") if x and x != "0"],
        default=[],
        help="server process id(s), comma-separated: CPU and RSS are summed over them",
    )
    p.add_argument(
        "--user-offset", type=int, default=0, help="user ids start here (several generators, distinct users)"
    )
    p.add_argument("--extra-ports", default="", help="more nodes (comma-separated ports) to spread receivers over")
    p.add_argument("--src-prefix", default="127.0.0.", help="source addresses: PREFIX + N")
    p.add_argument("--src-first", type=int, default=1)
    p.add_argument("--src-ips", type=int, default=8)
    p.add_argument("--window", type=int, default=256, help="connects in flight")
    p.add_argument("--receivers", type=int, default=1000)
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--probes", type=int, default=5)
    p.add_argument("--rate", type=float, default=5.0, help="fanout: max msg/s per sender")
    p.add_argument("--total-rate", type=float, default=20.0, help="latency: msg/s over all senders")
    p.add_argument("--batch-us", type=float, default=-1, help="fanout: sleep between loop passes (-1 = auto)")
    p.add_argument("--reads-per-s", type=float, default=100000.0, help="fanout auto batch: target socket reads/s")
    p.add_argument("--echo-timeout", type=float, default=60.0)
    p.add_argument("--max-warmup", type=float, default=60.0)
    p.add_argument("--max-window", type=float, default=90.0)
    p.add_argument("--max-batch", type=float, default=0.05, help="fanout auto batch: upper bound (s)")
    p.add_argument(
        "--exact-count", action="store_true", help="receivers walk every frame header instead of bytes.count"
    )
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--hold", type=float, default=0.0, help="capacity: seconds (0 = 2 ping intervals + 5)")
    p.add_argument("--connect-deadline", type=float, default=120.0)
    p.add_argument("--deadline", type=float, default=300.0, help="hard limit for the whole run (s)")
    p.add_argument("--latency-samples-out", default="")
    return p.parse_args(argv)


def main() -> None:
    a = parse_args()
    if not a.host.startswith("127."):
        sys.exit("loadgen only targets 127.0.0.0/8")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    needed = (a.receivers + a.senders) if a.mode in ("fanout", "latency") else a.clients
    if needed + 64 > fd_limit:
        sys.exit(f"need {needed} sockets but RLIMIT_NOFILE is {fd_limit}")

    g = LoadGen(a)
    deadline = time.perf_counter() + a.deadline
    if a.mode in ("fanout", "latency"):
        res = run_fanout(g, a, deadline)
    elif a.mode == "connect":
        res = run_connect(g, a, deadline)
    elif a.mode == "idle":
        res = run_idle(g, a, deadline)
    else:
        res = run_capacity(g, a, deadline)
    g.close_all()
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
