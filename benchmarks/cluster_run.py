"""Cluster benchmarks (issue 9): RealCast nodes over Redis, side by side with Node socket.io 4.8
and @socket.io/redis-adapter, as real processes over 127.0.0.1.

    .venv/bin/python benchmarks/cluster_run.py --all            # everything below (~15 min)
    .venv/bin/python benchmarks/cluster_run.py --latency --deliveries [--runs 3] [--servers realcast,node]
    .venv/bin/python benchmarks/cluster_run.py --capacity [--capacity-clients 100000] [--capacity-nodes 8]
    .venv/bin/python benchmarks/cluster_run.py --adapter-cost   # re-runs cluster_bench.py
    .venv/bin/python benchmarks/cluster_run.py --quick --out /tmp/x   # smoke run, tiny sizes

Scenarios:
  latency     20 msg/s (20 senders, open loop) into a room of 1,000 receivers split over 2 nodes
              (first half of the join order on node 1, second half on node 2; 50 probes spread
              over both), senders on node 1: p50/p99 over all probes, and per node.
  deliveries  run.py's fan-out: 1,000 receivers over the 2 nodes as above + 200 senders on node 1,
              each sending its next chat:message when the previous one came back, <= 5 msg/s.
  capacity    N idle clients joined to 100 streams (chat:join) over --capacity-nodes RealCast
              nodes, one load generator process per node (each with its own 8 loopback source
              addresses and distinct user ids), held --hold s; on time = still connected and no
              gap between pings longer than pingInterval + max(1 s, 10%).
  adapter-cost  benchmarks/cluster_bench.py (in-process CPU per 1M deliveries, Redis vs local).

Every scenario run gets a fresh private redis-server (tests/services.py) and fresh nodes. The
nodes and redis-server are pinned to core 0, every load generator to core 1 (as run.py).
Latency and deliveries: run i of every server (rotated order) before run i+1; medians of the runs.
Writes results/cluster.json and results/cluster.md (or --out DIR); raw logs in results/raw/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import run as single  # noqa: E402  (benchmarks/ is not a package: run.py's server commands)
from loadgen import proc_cpu, proc_rss  # noqa: E402

from tests.services import RedisServer, free_port, wait_for_port  # noqa: E402

PY = sys.executable
LABEL = {"realcast": "RealCast (2 nodes + Redis)", "node": "Node socket.io 4.8 + redis-adapter (2 nodes)"}
SERVER_CORE, GEN_CORE = "0", "1"


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a running process (redis-server starts its threads before we can taskset it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


class Redis:
    def __init__(self) -> None:
        self.server = RedisServer()
        self.server.start()
        assert self.server.proc is not None
        self.pid = self.server.proc.pid
        pin_threads(self.pid, {int(SERVER_CORE)})
        self.url = self.server.url

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def rss(self) -> int:
        return proc_rss(self.pid)

    def stop(self) -> None:
        self.server.cleanup()


class Cluster:
    """`nodes` server processes of one kind on free ports, all on the same Redis."""

    def __init__(self, kind: str, nodes: int, redis_url: str, log_path: Path, cores: str = SERVER_CORE) -> None:
        self.kind = kind
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.data_dirs: list[str] = []
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            for i in range(nodes):
                port = free_port()
                data_dir = tempfile.mkdtemp(prefix=f"bench-cluster-{kind}-")
                cmd, env = single.server_cmd(kind, port, data_dir)
                if kind == "realcast":
                    env["REALCAST_REDIS_URL"] = redis_url
                    env["REALCAST_NODE_ID"] = f"bench{i + 1}"
                else:
                    cmd = [*cmd, "--redis-url", redis_url]
                proc = subprocess.Popen(
                    ["taskset", "-c", cores, *cmd],
                    env=env,
                    stdout=self.log,
                    stderr=subprocess.STDOUT,
                    cwd=str(REPO),
                    preexec_fn=single._raise_nofile,
                )
                self.procs.append(proc)
                self.ports.append(port)
                self.data_dirs.append(data_dir)
            for proc, port in zip(self.procs, self.ports, strict=True):
                try:
                    wait_for_port(port, 30)
                except TimeoutError:
                    why = f"{kind} node on {port} did not listen (exit {proc.poll()}); see {log_path}"
                    raise RuntimeError(why) from None
            time.sleep(0.5)
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]  # taskset execs the server: same pid

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.log.close()
        for d in self.data_dirs:
            shutil.rmtree(d, ignore_errors=True)


_src_block = [0]


def next_src_prefix() -> str:
    # A fresh block of loopback source addresses for every generator: nothing left by an
    # earlier run (ports in use) can collide with it. 127.100.x .. 127.199.x (run.py uses 127.21-220)
    _src_block[0] = _src_block[0] % 100 + 1
    return f"127.{_src_block[0] + 99}.0."


def loadgen_cmd(mode: str, ports: list[int], pids: list[int], args: list[str], deadline: float) -> list[str]:
    return [
        "taskset", "-c", GEN_CORE, PY, str(HERE / "loadgen.py"), "--mode", mode,
        "--port", str(ports[0]), "--extra-ports", ",".join(map(str, ports[1:])),
        "--server-pid", ",".join(map(str, pids)), "--src-prefix", next_src_prefix(),
        "--app-id", single.APP_ID, "--deadline", str(deadline), *args,
    ]  # fmt: skip


def run_loadgen(cmd: list[str], timeout: float, raw: Path) -> dict[str, Any]:
    env = dict(os.environ, BENCH_JWT_SECRET=single.SECRET)
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen timed out after {timeout} s"}
    raw.write_text(" ".join(cmd) + "\n" + out.stdout + "\n--- stderr ---\n" + out.stderr)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": f"loadgen exit {out.returncode}: {out.stderr.strip()[-300:]}"}
    res: dict[str, Any] = json.loads(lines[-1])
    return res


# ----------------------------------------------------------------------------- scenarios


def fanout_args(scen: str, quick: bool) -> tuple[list[str], float]:
    """loadgen arguments and timeout of the latency and deliveries scenarios."""
    r = "100" if quick else "1000"
    if scen == "latency":
        dur = "3" if quick else "15"
        return ["--receivers", r, "--senders", "20", "--total-rate", "20", "--probes", "10" if quick else "50",
                "--warmup", "1" if quick else "2", "--duration", dur], 90.0  # fmt: skip
    dur = "3" if quick else "10"
    return ["--receivers", r, "--senders", "20" if quick else "200", "--rate", "5", "--probes", "5",
            "--warmup", "1" if quick else "5", "--duration", dur, "--max-warmup", "60"], 300.0  # fmt: skip


def one_fanout_run(kind: str, scen: str, a: argparse.Namespace, tag: str) -> dict[str, Any]:
    args, timeout = fanout_args(scen, a.quick)
    redis = Redis()
    cluster = None
    try:
        cluster = Cluster(kind, 2, redis.url, a.raw / f"{tag}.server.log")
        redis_cpu0 = redis.cpu()
        mode = "latency" if scen == "latency" else "fanout"
        res = run_loadgen(
            loadgen_cmd(mode, cluster.ports, cluster.pids, args, timeout - 10), timeout, a.raw / f"{tag}.log"
        )
        res["redis_cpu_s_whole_run"] = redis.cpu() - redis_cpu0
        res["redis_rss"] = redis.rss()
        res["ports"] = cluster.ports
        if not cluster.alive():
            res["error"] = "a server node died during the run"
        return res
    finally:
        if cluster is not None:
            cluster.stop()
        redis.stop()


def run_side_by_side(a: argparse.Namespace) -> dict[str, dict[str, list[dict[str, Any]]]]:
    scens = [s for s in ("latency", "deliveries") if getattr(a, s)]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {s: {k: [] for k in a.servers} for s in scens}
    for i in range(a.runs):
        order = a.servers[i % len(a.servers) :] + a.servers[: i % len(a.servers)]
        for scen in scens:
            for kind in order:
                t0 = time.monotonic()
                res = one_fanout_run(kind, scen, a, f"cluster_{scen}_{kind}_run{i + 1}")
                raw[scen][kind].append(res)
                print(f"[{scen} run {i + 1}] {kind}: {brief(scen, res)} ({time.monotonic() - t0:.0f} s)", flush=True)
    return raw


def brief(scen: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    if scen == "latency":
        per = r.get("latency_by_port", {})
        cross = per.get(str(r["ports"][1]), {})
        return (
            f"p50 {r['latency']['p50_ms']:.2f} ms p99 {r['latency']['p99_ms']:.2f} ms; "
            f"node-2 probes p50 {cross.get('p50_ms') or 0:.2f} p99 {cross.get('p99_ms') or 0:.2f} ms"
        )
    return (
        f"{r['deliveries_per_s']:,.0f} deliveries/s, {r['server_cpu_s_per_1m_deliveries'] or 0:.3f} CPU-s/1M, "
        f"core0 {r['core_busy'].get('cpu0')}, gen {r['gen_cpu_share']:.2f}"
    )


def run_capacity(a: argparse.Namespace) -> dict[str, Any]:
    n_nodes, total = a.capacity_nodes, a.capacity_clients
    per = [total // n_nodes + (1 if k < total % n_nodes else 0) for k in range(n_nodes)]
    redis = Redis()
    cluster = None
    if a.presence_limit is not None:
        os.environ["REALCAST_PRESENCE_LIMIT"] = str(a.presence_limit)  # inherited by the nodes
    try:
        cluster = Cluster("realcast", n_nodes, redis.url, a.raw / "cluster_capacity.server.log", a.node_cores)
        time.sleep(1.0)
        rss_base = [proc_rss(pid) for pid in cluster.pids]
        t0 = time.monotonic()
        deadline = a.hold + a.connect_deadline + 60
        cmds = []
        offset = 0
        for k in range(n_nodes):
            args = ["--clients", str(per[k]), "--rooms", "100", "--stream", "stream_cap", "--window", "128",
                    "--hold", str(a.hold), "--connect-deadline", str(a.connect_deadline),
                    "--user-offset", str(offset)]  # fmt: skip
            offset += per[k]
            cmds.append(loadgen_cmd("capacity", [cluster.ports[k]], [cluster.pids[k]], args, deadline))
        with ThreadPoolExecutor(n_nodes) as pool:
            futures = [
                pool.submit(run_loadgen, cmd, deadline + 30, a.raw / f"cluster_capacity_gen{k + 1}.log")
                for k, cmd in enumerate(cmds)
            ]
            gens = [f.result() for f in futures]
        elapsed = time.monotonic() - t0
        nodes = []
        for k, g in enumerate(gens):
            alive = g.get("alive", 0)
            rss_end = g.get("server_rss") or 0
            nodes.append(
                {
                    "port": cluster.ports[k],
                    "clients": per[k],
                    "joined": g.get("joined"),
                    "alive": alive,
                    "on_time": g.get("on_time", 0),
                    "worst_ping_gap_s": g.get("worst_ping_gap_s"),
                    "connect_s": g.get("connect_s"),
                    "connect_fail": g.get("connect_fail"),
                    "fail_reasons": g.get("fail_reasons"),
                    "disconnects": g.get("disconnects"),
                    "rss_base": rss_base[k],
                    "rss_end": rss_end,
                    "rss_per_client_kib": (rss_end - rss_base[k]) / alive / 1024 if alive and rss_end else None,
                    "error": g.get("error"),
                }
            )
        return {
            "clients": total,
            "nodes": n_nodes,
            "presence_limit": a.presence_limit,
            "node_cores": a.node_cores,
            "hold_s": a.hold,
            "ping_interval_s": next((g.get("ping_interval_s") for g in gens if "ping_interval_s" in g), None),
            "alive": sum(n["alive"] for n in nodes),
            "on_time": sum(n["on_time"] for n in nodes),
            "worst_ping_gap_s": max((n["worst_ping_gap_s"] or 0) for n in nodes),
            "connect_s_max": max((n["connect_s"] or 0) for n in nodes),
            "elapsed_s": elapsed,
            "servers_alive_at_end": cluster.alive(),
            "redis_rss": redis.rss(),
            "per_node": nodes,
        }
    finally:
        os.environ.pop("REALCAST_PRESENCE_LIMIT", None)
        if cluster is not None:
            cluster.stop()
        redis.stop()


def capacity_key(a: argparse.Namespace) -> str:
    key = "capacity" if a.presence_limit is None else f"capacity_presence_limit_{a.presence_limit}"
    return key if a.node_cores == SERVER_CORE else f"{key}_cores_{a.node_cores.replace(',', '_')}"


def run_adapter_cost(a: argparse.Namespace) -> dict[str, Any]:
    cmd = ["taskset", "-c", SERVER_CORE, PY, str(HERE / "cluster_bench.py"), "--runs", str(a.runs)]
    if a.quick:
        cmd += ["--members", "100", "--turns", "40"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    (a.raw / "cluster_adapter_cost.log").write_text(out.stdout + "\n--- stderr ---\n" + out.stderr)
    if out.returncode != 0:
        return {"error": f"cluster_bench.py exit {out.returncode}: {out.stderr.strip()[-300:]}"}
    res: dict[str, Any] = {"output": out.stdout.strip().splitlines()}
    for key, pat in (("local", r"median local: ([\d.]+)"), ("redis", r"median redis: ([\d.]+)"),
                     ("redis_server", r"median redis-server: ([\d.]+)")):  # fmt: skip
        m = re.search(pat, out.stdout)
        if m:
            res[key] = float(m.group(1))
    if res.get("local") and res.get("redis"):
        res["ratio"] = res["redis"] / res["local"]
    return res


# ----------------------------------------------------------------------------- report


def med(vals: list[Any]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def other_cpu(r: dict[str, Any]) -> float:
    """CPU (in cores) that neither the nodes nor the generator used in the window: redis-server, the
    kernel's softirq work not charged to them, and other processes sharing this machine."""
    busy = sum(r.get("core_busy", {}).values())
    return max(0.0, busy - r["server_cpu_share"] - r["gen_cpu_share"])


def figures(raw: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    figs: dict[str, dict[str, Any]] = {}

    def put(fig: str, kind: str, vals: list[Any]) -> None:
        figs.setdefault(fig, {})[kind] = {"median": med(vals), "runs": vals}

    for kind, runs in raw.get("latency", {}).items():
        ok = [r for r in runs if "error" not in r]
        put("lat_p50_ms", kind, [r["latency"]["p50_ms"] for r in ok])
        put("lat_p99_ms", kind, [r["latency"]["p99_ms"] for r in ok])
        for label, idx in (("node1", 0), ("node2", 1)):
            per = [r.get("latency_by_port", {}).get(str(r["ports"][idx]), {}) for r in ok]
            put(f"lat_{label}_p50_ms", kind, [p.get("p50_ms") for p in per])
            put(f"lat_{label}_p99_ms", kind, [p.get("p99_ms") for p in per])
        put("lat_gen_cpu_share", kind, [r["gen_cpu_share"] for r in ok])
        put("lat_other_cpu", kind, [other_cpu(r) for r in ok])
    for kind, runs in raw.get("deliveries", {}).items():
        ok = [r for r in runs if "error" not in r]
        put("deliveries_per_s", kind, [r["deliveries_per_s"] for r in ok])
        put("cpu_s_per_1m", kind, [r["server_cpu_s_per_1m_deliveries"] for r in ok])
        put("redis_cpu_s_per_1m", kind, [r["redis_cpu_s_whole_run"] / r["deliveries"] * 1e6 for r in ok])
        put("server_cpu_share", kind, [r["server_cpu_share"] for r in ok])
        put("core0_busy", kind, [r["core_busy"].get("cpu0") for r in ok])
        put("gen_cpu_share", kind, [r["gen_cpu_share"] for r in ok])
        put("other_cpu", kind, [other_cpu(r) for r in ok])
        put("capped", kind, [1.0 if single.is_capped(r) else 0.0 for r in ok])
        put("sat_p50_ms", kind, [r["latency"]["p50_ms"] for r in ok])
    return figs


ROWS = [
    # key, label, higher is better (None: no ratio)
    ("lat_p50_ms", "p50 latency, 20 msg/s into 1,000 over 2 nodes, all probes [ms]", False),
    ("lat_p99_ms", "p99 latency, same, all probes [ms]", False),
    ("lat_node2_p50_ms", "p50 latency, probes on node 2 (cross-node) [ms]", False),
    ("lat_node2_p99_ms", "p99 latency, probes on node 2 (cross-node) [ms]", False),
    ("lat_node1_p50_ms", "p50 latency, probes on node 1 (senders' node) [ms]", False),
    ("lat_node1_p99_ms", "p99 latency, probes on node 1 (senders' node) [ms]", False),
    ("lat_gen_cpu_share", "load generator CPU share, latency", None),
    ("lat_other_cpu", "CPU used by others in the latency window (redis, softirq, other processes) [cores]", None),
    ("deliveries_per_s", "deliveries/s, room of 1,000 over 2 nodes + 200 senders", True),
    ("cpu_s_per_1m", "server CPU-s per 1M deliveries (both nodes)", False),
    ("redis_cpu_s_per_1m", "redis-server CPU-s per 1M deliveries (whole run)", False),
    ("server_cpu_share", "server CPU share in the window (both nodes, of core 0)", None),
    ("core0_busy", "core 0 busy share in the window", None),
    ("gen_cpu_share", "load generator CPU share (core 1)", None),
    ("other_cpu", "CPU used by others in the deliveries window [cores]", None),
    ("sat_p50_ms", "p50 latency at saturation (queueing) [ms]", False),
]


def fmt(v: Any) -> str:
    return single.fmt(v)


def markdown(res: dict[str, Any]) -> str:
    out = [
        "# Cluster benchmarks (issue 9)",
        "",
        f"Generated {res['meta']['generated']} by `{res['meta']['command']}`.",
    ]
    for prev in res["meta"].get("earlier", []):
        out.append(
            f"Scenarios kept (`--merge`) from `{prev.get('command')}` ({prev.get('generated')}, "
            f"commit {prev.get('machine', {}).get('commit')})."
        )
    out.append("")
    out.append(
        "Nodes and redis-server pinned to core 0, load generators to core 1 (`taskset`); every scenario run has a "
        "fresh private redis-server and fresh nodes; latency and deliveries: medians of "
        f"{res['meta']['runs']} interleaved runs. Method: benchmarks/cluster_run.py docstring and benchmarks/README.md."
    )
    figs = res.get("figures", {})
    servers = res["meta"]["servers"]
    if figs:
        head = ["figure", *[LABEL[s] for s in servers]]
        if "realcast" in servers and "node" in servers:
            head.append("RealCast / Node")
        out += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key, label, hib in ROWS:
            if key not in figs:
                continue
            row = [label]
            for s in servers:
                cell = figs[key].get(s, {}).get("median")
                txt = fmt(cell)
                if key == "deliveries_per_s" and figs.get("capped", {}).get(s, {}).get("median"):
                    txt = f">= {txt} (cap*)"
                row.append(txt)
            if len(head) > len(servers) + 1:
                rc, nd = (figs[key].get(s, {}).get("median") for s in ("realcast", "node"))
                row.append(f"{rc / nd:.2f}x" if hib is not None and rc and nd else "–")
            out.append("| " + " | ".join(row) + " |")
        out += [
            "",
            "(cap*) the senders ran at their cap (200 x 5 msg/s): the server was not the limit, so the figure "
            "is a lower bound and CPU-s per 1M deliveries is the better comparison.",
        ]
    ac = res.get("adapter_cost")
    if ac:
        out += ["", "## Redis adapter cost (benchmarks/cluster_bench.py, in-process, core 0)", ""]
        if "error" in ac:
            out.append(f"ERROR: {ac['error']}")
        else:
            out += ["```", *ac["output"], "```"]
    for key in sorted(k for k in res if k.startswith("capacity")):
        cap = res[key]
        limit = cap.get("presence_limit")
        config = "default config" if limit is None else f"REALCAST_PRESENCE_LIMIT={limit} (no viewer.joined/left)"
        config += f", nodes on core(s) {cap.get('node_cores', SERVER_CORE)}"
        out += ["", f"## Idle clients held: {cap['clients']:,} tried over {cap['nodes']} RealCast nodes, {config}", ""]
        out.append(
            f"alive at the end: {cap['alive']:,}; on time: {cap['on_time']:,}; "
            f"worst ping gap {cap['worst_ping_gap_s']:.1f} s "
            f"(ping interval {cap['ping_interval_s']} s, held {cap['hold_s']} s after joining; slowest generator "
            f"connected its clients in {cap['connect_s_max']:.1f} s); nodes alive at the end: "
            f"{cap['servers_alive_at_end']}; redis-server RSS {cap['redis_rss'] / 2**20:.0f} MiB."
        )
        out += [
            "",
            "| node port | clients | alive | on time | worst gap [s] | RSS before [MiB] | RSS held [MiB] "
            "| RSS per client [KiB] |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n in cap["per_node"]:
            out.append(
                f"| {n['port']} | {n['clients']:,} | {n['alive']:,} | {n['on_time']:,} "
                f"| {fmt(n['worst_ping_gap_s'])} | "
                f"{n['rss_base'] / 2**20:.0f} | {n['rss_end'] / 2**20:.0f} | {fmt(n['rss_per_client_kib'])} |"
                + (f" error: {n['error']}" if n.get("error") else "")
            )
    targets = res.get("targets")
    if targets:
        out += ["", "## Targets", "", *[f"- {t}" for t in targets]]
    notes = HERE / "results" / "cluster_notes.md"  # hand-written reading of the figures, kept across runs
    if notes.exists():
        out += ["", notes.read_text().strip()]
    out += ["", f"Machine: {json.dumps(res['meta']['machine'])}", ""]
    return "\n".join(out)


def verdicts(res: dict[str, Any]) -> list[str]:
    figs = res.get("figures", {})

    def m(key: str, s: str) -> float | None:
        v: float | None = figs.get(key, {}).get(s, {}).get("median")
        return v

    lines = []
    p99 = m("lat_p99_ms", "realcast")
    if p99 is not None:
        cross = m("lat_node2_p99_ms", "realcast")
        lines.append(
            f"cross-node latency p99 {p99:.2f} ms over all probes, {cross or 0:.2f} ms on node 2's probes "
            f"(goal <= 15 ms): {'PASS' if max(p99, cross or 0) <= 15 else 'FAIL'}"
        )
    rc, nd = m("deliveries_per_s", "realcast"), m("deliveries_per_s", "node")
    if rc and nd:
        lines.append(
            f"deliveries/s vs Node + redis-adapter: {rc / nd:.2f}x (goal >= 3x): {'PASS' if rc >= 3 * nd else 'FAIL'}"
        )
    ac = res.get("adapter_cost") or {}
    if ac.get("ratio"):
        verdict = "PASS" if ac["ratio"] <= 1.3 else "FAIL"
        lines.append(f"Redis adapter CPU cost {ac['ratio']:.2f}x local (goal <= 1.3x): {verdict}")
    for key in sorted(k for k in res if k.startswith("capacity")):
        cap = res[key]
        verdict = "PASS" if cap["on_time"] >= 100000 else "FAIL"
        if cap["clients"] < 100000 and cap["on_time"] == cap["clients"]:
            verdict = f"all {cap['clients']:,} tried held; fewer than the 100,000 of the goal were tried"
        lines.append(
            f"idle clients held on time ({key}): {cap['on_time']:,} of {cap['clients']:,} (goal 100,000): {verdict}"
        )
    return lines


def machine() -> dict[str, Any]:
    import resource

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "engineio_min", "realcast"], cwd=REPO,
                           capture_output=True, text=True).stdout  # fmt: skip
    node_v = (
        subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        if shutil.which("node")
        else None
    )
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return {
        "cores": os.cpu_count(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
        "commit": commit.strip() + ("+dirty" if dirty else ""),
        "python": sys.version.split()[0],
        "node": node_v,
        "redis": redis_v,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--all", action="store_true")
    p.add_argument("--latency", action="store_true")
    p.add_argument("--deliveries", action="store_true")
    p.add_argument("--capacity", action="store_true")
    p.add_argument("--adapter-cost", action="store_true")
    p.add_argument("--report", action="store_true", help="only re-render cluster.md from cluster.json")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 run (smoke)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--servers", default="realcast,node")
    p.add_argument("--capacity-clients", type=int, default=100000)
    p.add_argument("--capacity-nodes", type=int, default=8)
    p.add_argument(
        "--presence-limit",
        type=int,
        default=None,
        help="capacity: REALCAST_PRESENCE_LIMIT for the nodes (0: no viewer.joined/left); default: the nodes' default",
    )
    p.add_argument(
        "--node-cores", default=SERVER_CORE, help="capacity: cores the nodes run on (taskset list; generators: core 1)"
    )
    p.add_argument("--hold", type=float, default=120.0, help="capacity: seconds held after joining")
    p.add_argument("--connect-deadline", type=float, default=300.0)
    p.add_argument("--merge", action="store_true", help="keep the scenarios not run now from the existing cluster.json")
    p.add_argument("--out", default=str(HERE / "results"), help="where cluster.json and cluster.md go")
    a = p.parse_args()
    if a.all:
        a.latency = a.deliveries = a.capacity = a.adapter_cost = True
    if a.report:
        path = Path(a.out) / "cluster.json"
        res = json.loads(path.read_text())
        if "raw" in res:
            res["figures"] = figures(res["raw"])
        res["targets"] = verdicts(res)
        path.write_text(json.dumps(res, indent=1) + "\n")
        (path.parent / "cluster.md").write_text(markdown(res))
        print(markdown(res))
        return
    if not (a.latency or a.deliveries or a.capacity or a.adapter_cost):
        p.error("pick a scenario (--latency, --deliveries, --capacity, --adapter-cost) or --all")
    a.servers = [s for s in a.servers.split(",") if s]
    for s in a.servers:
        if s not in LABEL:
            p.error(f"unknown server {s!r} (realcast, node)")
    if "node" in a.servers and not (HERE / "peers" / "node" / "node_modules" / "@socket.io" / "redis-adapter").exists():
        p.error("the Node peer is not installed: run `.venv/bin/python benchmarks/run.py --install`")
    if a.quick:
        a.runs = 1
        if a.capacity_clients == 100000:
            a.capacity_clients, a.capacity_nodes, a.hold = 200, 2, 3.0
    a.out = Path(a.out)
    a.out.mkdir(parents=True, exist_ok=True)
    a.raw = a.out / "raw"
    a.raw.mkdir(exist_ok=True)
    single._raise_nofile()

    res: dict[str, Any] = {
        "meta": {
            "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": "benchmarks/cluster_run.py " + " ".join(sys.argv[1:]),
            "runs": a.runs,
            "servers": a.servers,
            "machine": machine(),
        }
    }
    old: dict[str, Any] = {}
    if a.merge and (a.out / "cluster.json").exists():
        old = json.loads((a.out / "cluster.json").read_text())
        # each scenario keeps the command and commit it was measured with
        prev = dict(old.get("meta", {}))
        res["meta"]["earlier"] = [*prev.pop("earlier", []), prev]
        for key in old:
            if key in ("raw", "figures", "adapter_cost") or key.startswith("capacity"):
                res[key] = old[key]
    t0 = time.monotonic()
    if a.latency or a.deliveries:
        res["raw"] = {**res.get("raw", {}), **run_side_by_side(a)}  # --merge: the other scenario stays
        res["figures"] = figures(res["raw"])
    if a.adapter_cost:
        res["adapter_cost"] = run_adapter_cost(a)
        print(f"[adapter cost] {res['adapter_cost'].get('ratio') or res['adapter_cost']}", flush=True)
    if a.capacity:
        cap = res[capacity_key(a)] = run_capacity(a)
        print(
            f"[capacity] {cap['on_time']:,} of {cap['clients']:,} on time, worst gap {cap['worst_ping_gap_s']:.1f} s",
            flush=True,
        )
    res["targets"] = verdicts(res)
    res["meta"]["wall_s"] = round(time.monotonic() - t0, 1)
    (a.out / "cluster.json").write_text(json.dumps(res, indent=1) + "\n")
    (a.out / "cluster.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
