"""RealCast benchmark runner: RealCast side by side with python-socketio and Node socket.io.

    .venv/bin/python benchmarks/run.py --install          # npm install + pip install -e .[bench]
    .venv/bin/python benchmarks/run.py --all              # every scenario, 3 interleaved runs
    .venv/bin/python benchmarks/run.py --quick            # smoke run: small rooms, 1 run, ~1-2 min
    .venv/bin/python benchmarks/run.py --fanout --servers node,psio_aiohttp --rooms 1000

Every server runs pinned to core 0 (`taskset -c 0`) and the load generator
(benchmarks/loadgen.py) to core 1. Each scenario starts a fresh server process. Runs
are interleaved: run i of every server (in a rotated order) before run i+1. Figures are
medians over the runs. Writes benchmarks/results/results.md, results.json and PNG plots;
raw per-run output goes to benchmarks/results/raw/ (not committed).

RealCast is started the way users start it, `realcast serve`, configured through its
environment (see REALCAST_ENV below); its chat rate limiter stays on, with the limits
raised so that they do not throttle the 5 msg/s senders.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
RAW = RESULTS / "raw"
PY = sys.executable

SECRET = "bench-jwt-secret-0123456789abcdef-0123456789abcdef"  # >= 32 bytes (RealCast requires it)
APP_ID = "app_bench"
API_KEY = "bench-api-key-0123456789"

# RealCast: the rate limiter stays on; chat limits raised (the defaults, 5/s and 100/min per
# connection, would hold the 5 msg/s senders back). Everything else is the default config.
REALCAST_ENV = {
    "REALCAST_APP_ID": APP_ID,
    "REALCAST_JWT_SECRET": SECRET,
    "REALCAST_API_KEY": API_KEY,
    "REALCAST_HOST": "127.0.0.1",
    "REALCAST_LOG_LEVEL": "WARNING",
    "REALCAST_DEV": "false",
    "REALCAST_RATE_CHAT_PER_SECOND": "1000",
    "REALCAST_RATE_CHAT_PER_MINUTE": "10000",
}

ALL_SERVERS = ["realcast", "psio_aiohttp", "psio_uvicorn", "node"]
PEERS = ["psio_aiohttp", "psio_uvicorn", "node"]
LABEL = {
    "realcast": "RealCast",
    "psio_aiohttp": "python-socketio + aiohttp",
    "psio_uvicorn": "python-socketio + uvicorn/uvloop",
    "node": "Node socket.io 4.8",
}
PORTS = {"realcast": 8020, "psio_aiohttp": 8021, "psio_uvicorn": 8022, "node": 8023}


# ----------------------------------------------------------------------------- servers


def realcast_cmd() -> list[str] | None:
    exe = Path(PY).parent / "realcast"
    if exe.exists():
        return [str(exe), "serve"]
    if (REPO / "realcast" / "__main__.py").exists():
        return [PY, "-m", "realcast", "serve"]
    return None


def server_cmd(name: str, port: int, data_dir: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    env["BENCH_JWT_SECRET"] = SECRET
    env["BENCH_APP_ID"] = APP_ID
    if name == "realcast":
        cmd = realcast_cmd()
        if cmd is None:
            raise RuntimeError("realcast is not runnable yet (no `realcast` script, no realcast/__main__.py)")
        env.update(REALCAST_ENV)
        env["REALCAST_PORT"] = str(port)
        env["REALCAST_DATA_DIR"] = data_dir
        env["PYTHONPATH"] = str(REPO)
        return cmd, env
    if name == "psio_aiohttp":
        return [PY, str(HERE / "peers" / "psio_aiohttp.py"), "--port", str(port)], env
    if name == "psio_uvicorn":
        return [PY, str(HERE / "peers" / "psio_uvicorn.py"), "--port", str(port)], env
    if name == "node":
        return ["node", str(HERE / "peers" / "node" / "server.js"), "--port", str(port)], env
    raise ValueError(name)


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.port = PORTS[name]
        self.data_dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        cmd, env = server_cmd(name, self.port, self.data_dir)
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *cmd],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            preexec_fn=_raise_nofile,
        )
        self.pid = self.proc.pid  # taskset execs the server: same pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"{name} did not listen on {self.port} within 30 s")
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- scenarios

_src_block = [0]


def loadgen(server: Server, mode: str, args: list[str], timeout: float, tag: str) -> dict[str, Any]:
    # A fresh block of source addresses for every run: nothing left from a previous run
    # (TIME_WAIT, ports in use) can collide with it.
    _src_block[0] = _src_block[0] % 200 + 1
    cmd = [
        "taskset", "-c", "1", PY, str(HERE / "loadgen.py"),
        "--mode", mode, "--port", str(server.port), "--server-pid", str(server.pid),
        "--src-prefix", f"127.{_src_block[0] + 20}.0.", "--app-id", APP_ID,
        "--deadline", str(timeout - 10), *args,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_JWT_SECRET=SECRET)
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen timed out after {timeout}s"}
    (RAW / f"{tag}.log").write_text(out.stdout + "\n--- stderr ---\n" + out.stderr)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": f"loadgen exit {out.returncode}: {out.stderr.strip()[-300:]}"}
    res: dict[str, Any] = json.loads(lines[-1])
    return res


def scenario_specs(a: argparse.Namespace) -> list[tuple[str, str, list[str], float]]:
    """(scenario key, loadgen mode, loadgen args, timeout)."""
    q = a.quick
    specs = []
    spread = ["--rooms", str(a.spread_rooms)]
    if a.fanout:
        for r in a.rooms:
            specs.append(
                (
                    f"fanout_{r}",
                    "fanout",
                    ["--receivers", str(r), "--senders", str(a.senders), "--rate", str(a.sender_rate),
                     "--warmup", str(a.warmup), "--duration", str(a.duration), "--probes", "5"],
                    330 + r / 100,
                )
            )  # fmt: skip
    if a.latency:
        r = a.latency_receivers
        specs.append(
            (
                "latency",
                "latency",
                ["--receivers", str(r), "--senders", "20", "--total-rate", "20", "--probes", "50" if not q else "10",
                 "--warmup", "2", "--duration", str(5 if q else 15)],
                90,
            )
        )  # fmt: skip
    if a.connect:
        n = 500 if q else 5000
        specs.append(("connect", "connect", ["--clients", str(n), "--window", "128", *spread], 120))
    if a.memory:
        n = 1000 if q else 10000
        specs.append(("memory", "idle", ["--clients", str(n), "--window", "128", "--settle", "3", *spread], 180))
    if a.capacity:
        cap_args = ["--clients", str(a.capacity_clients), "--window", "256", "--hold", str(a.hold), *spread]
        specs.append(("capacity", "capacity", cap_args, a.hold + 300))
    return specs


# ----------------------------------------------------------------------------- figures


def med(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def is_capped(r: dict[str, Any]) -> bool:
    """The senders were held back by their own msg/s cap, not by delivery (server not saturated)."""
    rtt = r.get("echo_rtt_mean_s")
    cap = r.get("offered_cap_msgs_per_s") or 0
    if rtt is not None and cap:
        return bool(rtt < 0.5 * r.get("senders", 200) / cap)
    return bool(cap and r["messages_per_s"] >= 0.7 * cap)


def unsaturated(r: dict[str, Any]) -> bool:
    """Core 0 (the server's) had idle time in the window: the limit was elsewhere."""
    return bool(r.get("core_busy", {}).get("cpu0", 1.0) < 0.85)


def summarise(raw: dict[str, dict[str, list[dict[str, Any]]]], servers: list[str]) -> dict[str, Any]:
    """raw[scenario][server] = list of loadgen results -> medians per figure and server."""
    figs: dict[str, dict[str, Any]] = {}

    def put(fig: str, server: str, vals: list[Any], n: int) -> None:
        figs.setdefault(fig, {})[server] = {"median": med(vals), "runs": vals, "n_ok": n}

    for scen, per in raw.items():
        for s, runs in per.items():
            ok = [r for r in runs if "error" not in r]
            if scen.startswith("fanout_"):
                rsize = scen.split("_")[1]
                put(f"deliveries_per_s_R{rsize}", s, [r["deliveries_per_s"] for r in ok], len(ok))
                put(f"cpu_s_per_1m_R{rsize}", s, [r["server_cpu_s_per_1m_deliveries"] for r in ok], len(ok))
                put(f"gen_cpu_share_R{rsize}", s, [r["gen_cpu_share"] for r in ok], len(ok))
                put(f"server_cpu_share_R{rsize}", s, [r["server_cpu_share"] for r in ok], len(ok))
                put(f"sat_p50_ms_R{rsize}", s, [r["latency"]["p50_ms"] for r in ok], len(ok))
                put(f"capped_R{rsize}", s, [1.0 if is_capped(r) else 0.0 for r in ok], len(ok))
                put(f"unsat_R{rsize}", s, [1.0 if unsaturated(r) else 0.0 for r in ok], len(ok))
                put(f"join_s_R{rsize}", s, [r["connect_s"] for r in ok], len(ok))
            elif scen == "latency":
                put("lat_p50_ms", s, [r["latency"]["p50_ms"] for r in ok], len(ok))
                put("lat_p99_ms", s, [r["latency"]["p99_ms"] for r in ok], len(ok))
                put("lat_gen_cpu_share", s, [r["gen_cpu_share"] for r in ok], len(ok))
            elif scen == "connect":
                put("connects_per_s", s, [r["connects_per_s"] for r in ok], len(ok))
                put("connect_gen_cpu_share", s, [r["gen_cpu_share"] for r in ok], len(ok))
                put("connect_server_cpu_share", s, [r["server_cpu_share"] for r in ok], len(ok))
            elif scen == "memory":
                put(
                    "rss_per_client_kib",
                    s,
                    [r["rss_per_client"] / 1024 for r in ok if r.get("rss_per_client")],
                    len(ok),
                )
            elif scen == "capacity":
                put("capacity_on_time", s, [r["on_time"] for r in ok], len(ok))
                put("capacity_worst_gap_s", s, [r["worst_ping_gap_s"] for r in ok], len(ok))
    return figs


FIG_ROWS = [
    # (figure key prefix, label, higher is better, target for RealCast or None)
    ("deliveries_per_s_R{r}", "deliveries/s at saturation, R={r}", True, None),
    ("cpu_s_per_1m_R{r}", "server CPU-s per 1M deliveries, R={r}", False, 1.0),
    ("server_cpu_share_R{r}", "server CPU share during the window, R={r}", None, None),
    ("gen_cpu_share_R{r}", "load generator CPU share (its own core), R={r}", None, None),
    ("sat_p50_ms_R{r}", "p50 latency at saturation (queueing), R={r} [ms]", False, None),
    ("join_s_R{r}", "time to connect and join the room, R={r} [s]", False, None),
    ("lat_p50_ms", "p50 latency, 20 msg/s into {lat_r} [ms]", False, None),
    ("lat_p99_ms", "p99 latency, 20 msg/s into {lat_r} [ms]", False, 10.0),
    ("connects_per_s", "full connects/s (WS + CONNECT/JWT + chat:join)", True, None),
    ("connect_gen_cpu_share", "load generator CPU share during connects", None, None),
    ("rss_per_client_kib", "RSS per idle joined client [KiB]", False, 5.0),
    ("capacity_on_time", "idle clients held with heartbeats on time", True, 100000),
    ("capacity_worst_gap_s", "worst ping gap while holding them [s]", False, None),
]


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def markdown(figs: dict[str, Any], servers: list[str], meta: dict[str, Any]) -> str:
    rooms = meta["rooms"]
    keys: list[tuple[str, str, bool | None, float | None]] = []
    for key, label, hib, target in FIG_ROWS:
        if "{r}" in key:
            for r in rooms:
                keys.append((key.format(r=r), label.format(r=f"{r:,}"), hib, target))
        else:
            keys.append((key, label.format(lat_r=f"{meta['latency_receivers']:,}"), hib, target))
    peers = [s for s in servers if s != "realcast"]
    has_rc = "realcast" in servers
    head = ["figure", *[LABEL[s] for s in servers]]
    if has_rc:
        short = {"psio_aiohttp": "psio+aiohttp", "psio_uvicorn": "psio+uvicorn", "node": "Node"}
        head += [f"RealCast / {short.get(p, p)}" for p in peers]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, hib, _target in keys:
        if key not in figs:
            continue
        row = [label]
        for s in servers:
            cell = figs[key].get(s)
            txt = fmt(cell["median"]) if cell else "–"
            if key.startswith("deliveries_per_s_R"):
                rr = key.rsplit("R", 1)[1]
                unsat = ((figs.get("unsat_R" + rr) or {}).get(s) or {}).get("median")
                capped = ((figs.get("capped_R" + rr) or {}).get(s) or {}).get("median")
                if unsat or capped:
                    gen = ((figs.get("gen_cpu_share_R" + rr) or {}).get(s) or {}).get("median") or 0
                    why = "cap" if capped else ("gen" if gen > 0.75 else "?")
                    txt = f">= {txt} ({why}*)"
            row.append(txt)
        if has_rc:
            rc = (figs[key].get("realcast") or {}).get("median")
            for p in peers:
                pv = (figs[key].get(p) or {}).get("median")
                if hib is None or rc is None or not pv:
                    row.append("–")
                else:
                    row.append(f"{rc / pv:.2f}x")
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def targets(figs: dict[str, Any], rooms: list[int], skipped: dict[str, str]) -> list[str]:
    def m(key: str, s: str) -> float | None:
        return ((figs.get(key) or {}).get(s) or {}).get("median")

    lines = []
    for r in rooms:
        k = f"deliveries_per_s_R{r}"
        rc, nd, ai, uv = m(k, "realcast"), m(k, "node"), m(k, "psio_aiohttp"), m(k, "psio_uvicorn")
        if rc and nd:
            lines.append(
                f"- R={r:,}: deliveries/s vs Node {rc / nd:.2f}x (target >= 3x): {'PASS' if rc >= 3 * nd else 'FAIL'}"
            )
        for name, pv in (("python-socketio+aiohttp", ai), ("python-socketio+uvicorn", uv)):
            if rc and pv:
                lines.append(
                    f"- R={r:,}: deliveries/s vs {name} {rc / pv:.2f}x (target >= 6x): "
                    + ("PASS" if rc >= 6 * pv else "FAIL")
                )
        c = m(f"cpu_s_per_1m_R{r}", "realcast")
        if c is not None:
            lines.append(
                f"- R={r:,}: {c:.2f} server CPU-s per 1M deliveries (target <= 1.0): {'PASS' if c <= 1.0 else 'FAIL'}"
            )
    p99 = m("lat_p99_ms", "realcast")
    if p99 is not None:
        lines.append(f"- p99 at 20 msg/s into 1,000: {p99:.2f} ms (target <= 10 ms): {'PASS' if p99 <= 10 else 'FAIL'}")
    rss = m("rss_per_client_kib", "realcast")
    if rss is not None:
        lines.append(f"- RSS per idle client: {rss:.2f} KiB (target <= 5 KiB): {'PASS' if rss <= 5 else 'FAIL'}")
    rc, nd = m("connects_per_s", "realcast"), m("connects_per_s", "node")
    if rc and nd:
        lines.append(f"- connects/s vs Node: {rc / nd:.2f}x (target >= 2x): {'PASS' if rc >= 2 * nd else 'FAIL'}")
    cap = m("capacity_on_time", "realcast")
    if cap is not None:
        verdict = "PASS" if cap >= 100000 else "FAIL"
        if cap < 100000 and "capacity_target" in skipped:
            verdict = "NOT TESTABLE HERE (file-descriptor limit; see below)"
        lines.append(f"- idle clients held on time: {cap:,.0f} (target 100,000): {verdict}")
    return lines


def plots(
    figs: dict[str, Any], servers: list[str], rooms: list[int], lat_files: dict[str, list[Path]], lat_receivers: int
) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plots (run with --install)")
        return []
    made = []
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(servers))

    def med_of(key: str, s: str) -> float:
        return ((figs.get(key) or {}).get(s) or {}).get("median") or 0

    for i, s in enumerate(servers):
        ys = [med_of(f"deliveries_per_s_R{r}", s) for r in rooms]
        xs = [j + i * width for j in range(len(rooms))]
        ax.bar(xs, ys, width, label=LABEL[s])
        for x, y, r in zip(xs, ys, rooms, strict=True):
            if not y:
                continue
            lb = med_of(f"unsat_R{r}", s) or med_of(f"capped_R{r}", s)
            txt = f"{y / 1e6:.2f}M" if y >= 1e6 else f"{y / 1e3:.0f}k"
            ax.text(x, y * 1.08, (">=" if lb else "") + txt, ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks([j + width * (len(servers) - 1) / 2 for j in range(len(rooms))])
    ax.set_xticklabels([f"R = {r:,} (+200 senders)" for r in rooms])
    ax.set_ylabel("deliveries / s (median, log scale)")
    ax.set_title("Fan-out throughput, server on 1 core (>= : server not saturated)")
    ax.set_ylim(top=ax.get_ylim()[1] * 3)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "deliveries_by_room.png", dpi=110)
    plt.close(fig)
    made.append("deliveries_by_room.png")

    if any(lat_files.values()):
        fig, ax = plt.subplots(figsize=(7, 4))
        for s in servers:
            samples: list[float] = []
            for p in lat_files.get(s, []):
                if p.exists():
                    samples += json.loads(p.read_text())
            if not samples:
                continue
            samples.sort()
            n = len(samples)
            ax.plot(samples, [(i + 1) / n for i in range(n)], label=f"{LABEL[s]} (n={n:,})")
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency [ms] (log)")
        ax.set_ylabel("CDF")
        ax.set_title(f"Latency CDF, 20 msg/s into a room of {lat_receivers:,} (all runs pooled)")
        ax.axhline(0.99, color="grey", lw=0.5, ls="--")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(RESULTS / "latency_cdf.png", dpi=110)
        plt.close(fig)
        made.append("latency_cdf.png")
    return made


# ----------------------------------------------------------------------------- main


def install() -> None:
    node_dir = HERE / "peers" / "node"
    npm = ["npm", "ci"] if (node_dir / "package-lock.json").exists() else ["npm", "install"]
    subprocess.run([*npm, "--no-audit", "--no-fund"], cwd=node_dir, check=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", "-e", f"{REPO}[bench]"], check=True)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks: server and generator stopped


def main() -> None:
    global RESULTS, RAW
    signal.signal(signal.SIGTERM, _on_sigterm)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--install", action="store_true", help="npm install the Node peer, pip install -e .[bench]")
    p.add_argument("--all", action="store_true", help="fanout + latency + connect + memory + capacity")
    p.add_argument("--quick", action="store_true", help="smoke run: R=200, 50 senders, short windows, 1 run")
    p.add_argument("--fanout", action="store_true")
    p.add_argument("--latency", action="store_true")
    p.add_argument("--connect", action="store_true")
    p.add_argument("--memory", action="store_true")
    p.add_argument("--capacity", action="store_true")
    p.add_argument("--servers", default=",".join(ALL_SERVERS), help="comma list of " + ",".join(ALL_SERVERS))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rooms", default="1000,5000", help="fan-out room sizes (receivers)")
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--sender-rate", type=float, default=5.0, help="fan-out: max msg/s per sender (closed loop)")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--latency-receivers", type=int, default=1000)
    p.add_argument(
        "--spread-rooms",
        type=int,
        default=100,
        help="connect/memory/capacity: clients join this many streams, round robin (1 = all in one)",
    )
    p.add_argument("--capacity-clients", type=int, default=100000)
    p.add_argument("--hold", type=float, default=60.0, help="capacity: seconds to hold the idle clients")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--merge", action="store_true", help="keep the scenarios not run now from the existing results.json")
    p.add_argument("--append", action="store_true", help="with --merge: add these runs to those of the same scenario")
    p.add_argument("--rotate", type=int, default=0, help="start the server order rotated by this much")
    p.add_argument("--report", action="store_true", help="only re-render the report from results.json")
    a = p.parse_args()

    if a.report:
        a.merge = True  # re-render results.md, the plots and the README from results.json
    elif a.install:
        install()
        if not (a.all or a.quick or a.fanout or a.latency or a.connect or a.memory or a.capacity):
            return
    if a.all:
        a.fanout = a.latency = a.connect = a.memory = a.capacity = True
    if a.quick:
        if not (a.fanout or a.latency or a.connect or a.memory or a.capacity):
            a.fanout = a.latency = a.connect = a.memory = True
        a.runs = 1
        a.rooms = "200"
        a.senders = 50
        a.warmup, a.duration = 2.0, 3.0
        a.capacity_clients = min(a.capacity_clients, 2000)
        a.latency_receivers = 200
        a.hold = min(a.hold, 35.0)
    if not (a.fanout or a.latency or a.connect or a.memory or a.capacity or a.report):
        p.error("choose --all, --quick or some of --fanout/--latency/--connect/--memory/--capacity")
    a.rooms = [int(x) for x in str(a.rooms).split(",") if x]

    RESULTS = Path(a.out)
    RAW = RESULTS / "raw"
    RAW.mkdir(parents=True, exist_ok=True)

    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    skipped: dict[str, str] = {}
    if "realcast" in servers and realcast_cmd() is None:
        skipped["realcast"] = "not runnable yet (no `realcast` console script and no realcast/__main__.py)"
        servers.remove("realcast")
    if "node" in servers and not (HERE / "peers" / "node" / "node_modules" / "socket.io").exists():
        skipped["node"] = "benchmarks/peers/node/node_modules missing: run with --install"
        servers.remove("node")
    for s, why in skipped.items():
        print(f"skipping {s}: {why}")

    if a.capacity:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        cap = hard - 300  # the server and the generator each need one fd per client, plus spares
        if a.capacity_clients > cap:
            print(
                f"capacity: {a.capacity_clients:,} clients need more fds than RLIMIT_NOFILE allows ({hard:,}); "
                f"trying {cap:,}"
            )
            skipped["capacity_target"] = (
                f"asked for {a.capacity_clients:,} idle clients, but the hard RLIMIT_NOFILE here is {hard:,} "
                f"(and cannot be raised without CAP_SYS_RESOURCE), so {cap:,} were tried"
            )
            a.capacity_clients = cap
    specs = scenario_specs(a)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    lat_files: dict[str, list[Path]] = {s: [] for s in servers}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    t_start = time.monotonic()
    for run in range(a.runs):
        for key, mode, args, timeout in specs:
            if key == "capacity" and run > 0 and not a.quick:
                continue  # one capacity run per server: it takes minutes
            rot = (run + a.rotate) % len(servers)
            order = servers[rot:] + servers[:rot]
            for s in order:
                tag = f"{stamp}-{key}-{s}-run{run}"
                extra = list(args)
                if mode == "latency":
                    lf = RAW / f"{tag}-latency.json"
                    extra += ["--latency-samples-out", str(lf)]
                    lat_files[s].append(lf)
                print(
                    f"[{time.monotonic() - t_start:6.0f}s] run {run + 1}/{a.runs} {key:<12} {s:<13}",
                    end=" ",
                    flush=True,
                )
                try:
                    srv = Server(s, RAW / f"{tag}-server.log")
                except RuntimeError as exc:
                    res: dict[str, Any] = {"error": str(exc)}
                else:
                    try:
                        res = loadgen(srv, mode, extra, timeout, tag)
                    finally:
                        srv.stop()
                if s == "realcast":
                    res["realcast_commit"] = code_version()
                raw.setdefault(key, {}).setdefault(s, []).append(res)
                print(one_line(res), flush=True)
                time.sleep(1.0)

    commands = [] if a.report else [" ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])]
    lat_paths = {s: [str(x) for x in v] for s, v in lat_files.items()}
    if a.merge and (RESULTS / "results.json").exists():
        # Keep the scenarios that this invocation did not run from the previous results.json.
        old = json.loads((RESULTS / "results.json").read_text())
        for scen, per in old["raw"].items():
            if scen in raw and a.append:
                for s, runs in per.items():
                    raw[scen][s] = runs + raw[scen].get(s, [])
            else:
                raw.setdefault(scen, per)
        if not a.latency:
            for s, v in old["meta"].get("latency_files", {}).items():
                lat_paths.setdefault(s, []).extend(v)
        commands = old["meta"].get("commands", []) + commands
        for k, v in old["meta"].get("skipped", {}).items():
            skipped.setdefault(k, v)
    servers = [s for s in ALL_SERVERS if any(s in per for per in raw.values())]
    rooms = sorted(int(k.split("_")[1]) for k in raw if k.startswith("fanout_"))
    figs = summarise(raw, servers)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ; ".join(commands),
        "commands": commands,
        "runs": max((len(v) for per in raw.values() for v in per.values()), default=0),
        "rooms": rooms,
        "senders": a.senders,
        "sender_rate": a.sender_rate,
        "latency_receivers": a.latency_receivers,
        "spread_rooms": a.spread_rooms,
        "warmup_s": a.warmup,
        "window_s": a.duration,
        "servers": servers,
        "skipped": {k: v for k, v in skipped.items() if k not in servers},
        "latency_files": lat_paths,
        "realcast_env": {k: ("<secret>" if "SECRET" in k or "KEY" in k else v) for k, v in REALCAST_ENV.items()},
        "machine": machine_info(),
    }
    (RESULTS / "results.json").write_text(json.dumps({"meta": meta, "figures": figs, "raw": raw}, indent=1))
    lat_files = {s: [Path(x) for x in v] for s, v in lat_paths.items()}
    pngs = plots(figs, servers, rooms, lat_files, a.latency_receivers) if (rooms or "latency" in raw) else []
    meta["realcast_commits"] = {
        scen: sorted({r.get("realcast_commit", "not recorded") for r in per.get("realcast", [])})
        for scen, per in sorted(raw.items())
        if per.get("realcast")
    }
    md = render_md(figs, servers, meta, pngs)
    (RESULTS / "results.md").write_text(md)
    if RESULTS.resolve() == (HERE / "results").resolve():
        update_readme(md)
    print()
    print(md)


def update_readme(md: str) -> None:
    """Copy results.md (images pointed into results/) between the README's result markers."""
    readme = HERE / "README.md"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if not readme.exists():
        return
    text = readme.read_text()
    if start not in text or end not in text:
        return
    body = md.replace("# RealCast benchmark results", "### Latest results (generated)", 1)
    body = body.replace("](deliveries_by_room.png)", "](results/deliveries_by_room.png)")
    body = body.replace("](latency_cdf.png)", "](results/latency_cdf.png)")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + body + "\n" + end + tail)


def one_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    m = r.get("mode")
    if m == "fanout":
        return (
            f"{r['deliveries_per_s']:>10,.0f} deliv/s  server cpu {r['server_cpu_share']:.2f}  gen cpu "
            f"{r['gen_cpu_share']:.2f}  {r['server_cpu_s_per_1m_deliveries'] or 0:.2f} cpu-s/1M  "
            f"warm-up {r.get('warmup_s', 0):.0f} s  cores {r['core_busy']}"
        )
    if m == "latency":
        lat = r["latency"]
        return (
            f"p50 {lat['p50_ms']:.2f} ms  p99 {lat['p99_ms']:.2f} ms  n={lat['samples']}  "
            f"gen cpu {r['gen_cpu_share']:.2f}"
        )
    if m == "connect":
        return (
            f"{r['connects_per_s']:>8,.0f} connects/s  p99 {r['connect_p99_ms']:.1f} ms  fail {r['connect_fail']}  "
            f"server cpu {r['server_cpu_share']:.2f}  gen cpu {r['gen_cpu_share']:.2f}"
        )
    if m == "idle":
        per = r.get("rss_per_client") or 0
        return f"{per / 1024:.2f} KiB/client  ({r['joined']:,} joined, fail {r['connect_fail']})"
    if m == "capacity":
        return (
            f"{r['on_time']:,} on time / {r['alive']:,} alive of {r['clients']:,}  "
            f"worst gap {r['worst_ping_gap_s']:.1f} s"
            f"  (ping interval {r['ping_interval_s']:.0f} s, fail {r['connect_fail']} {r['fail_reasons']})"
        )
    return json.dumps(r)[:200]


def code_version() -> str:
    """The commit that engineio_min/ and realcast/ were measured at, flagged if the tree differs."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "engineio_min", "realcast"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return "?"
    return head.stdout.strip() + (" + local changes" if dirty.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import resource

    info["nofile_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)
    info["realcast_commit_at_end"] = code_version()
    info["python"] = sys.version.split()[0]
    with contextlib.suppress(OSError):
        info["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    for mod in ("socketio", "engineio", "aiohttp", "uvicorn", "uvloop", "websockets"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", None) or _dist_version(mod)
        except ImportError:
            pass
    return info


def _dist_version(mod: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    names = {"socketio": "python-socketio", "engineio": "python-engineio"}
    try:
        return version(names.get(mod, mod))
    except PackageNotFoundError:
        return None


def render_md(figs: dict[str, Any], servers: list[str], meta: dict[str, Any], pngs: list[str]) -> str:
    lines = [
        "# RealCast benchmark results",
        "",
        "Generated " + meta["date"] + " by " + " then ".join(f"`{c}`" for c in meta["commands"]) + ": "
        f"medians of {meta['runs']} interleaved run(s) per figure, "
        f"each server pinned to core 0 and the load generator to core 1 (`taskset`), a fresh server process per "
        f"scenario. Fan-out: a room of R receivers + {meta['senders']} senders; each sender sends its next "
        f"`chat:message` when the previous one came back to it, at most {meta['sender_rate']:g} msg/s; "
        "deliveries count every "
        "`chat:message` frame received by any room member (R + senders). Window: 10 s (or three echo round "
        "trips, up to 90 s) after a warm-up of at least 5 s that lasts until every sender has had one message "
        "back (up to 60 s). Method and caveats: benchmarks/README.md.",
        "",
        markdown(figs, servers, meta),
        "",
    ]
    if any(
        k.startswith(("capped_R", "unsat_R")) and any((v or {}).get("median") for v in figs[k].values()) for k in figs
    ):
        lines += [
            "`>=` marks a server that was not saturated: its core had idle time in the window (core 0 busy "
            "< 85%), so the figure is a lower bound and the server CPU-s per 1M deliveries is the better "
            f"comparison. (cap*) the senders ran at their cap ({meta['senders']} x {meta['sender_rate']:g} msg/s) "
            "rather than being held back by delivery; (gen*) the load generator's core was the limit "
            "(generator CPU share > 0.75; on this machine a Python generator reads about 3M deliveries/s, "
            "~1 GB/s of frames, before its core is full).",
            "",
        ]
    if meta["skipped"]:
        lines += ["Skipped or capped: " + "; ".join(f"{k}: {v}" for k, v in meta["skipped"].items()), ""]
    t = targets(figs, meta["rooms"], meta["skipped"])
    if t:
        lines += ["## RealCast targets", "", *t, ""]
    for png in pngs:
        lines += [f"![{png}]({png})", ""]
    lines += [
        "RealCast configuration (`realcast serve`, environment): "
        + ", ".join(f"`{k}={v}`" for k, v in meta["realcast_env"].items())
        + ". The rate limiter is on; only the chat limits are raised so they do not throttle the senders.",
        "",
        "RealCast code measured (commit per scenario; engineio_min and realcast were changing while these "
        "were taken): " + "; ".join(f"{k}: {', '.join(v)}" for k, v in meta.get("realcast_commits", {}).items()),
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in meta["machine"].items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
