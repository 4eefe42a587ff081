"""Join rate of a RealCast cluster: full connects + chat:join per second, with viewer announcements
on (the default) and off (REALCAST_PRESENCE_LIMIT=0), side by side.

    .venv/bin/python benchmarks/cluster_join_rate.py [--clients 16000] [--nodes 8] [--rooms 100]
        [--repo OTHER_CHECKOUT] [--cases default,0]

Nodes and a private redis-server on core 0, one load generator process per node on core 1 (as
cluster_run.py). Each case starts fresh processes; clients are distinct users spread over
--rooms streams. Prints one line per case: joins/s (wall clock: noisy on a shared machine) and
the CPU seconds the nodes and redis-server used per 1,000 joins (less so). --repo runs the
realcast of another checkout (for A/B runs against a baseline). A diagnosis aid for the
capacity scenario, whose joins slow down as the streams fill up.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cluster_run as cr
import run as single


def one_case(nodes: int, clients: int, rooms: int, presence_limit: str | None, raw: Path) -> str:
    if presence_limit is None:
        os.environ.pop("REALCAST_PRESENCE_LIMIT", None)
    else:
        os.environ["REALCAST_PRESENCE_LIMIT"] = presence_limit  # inherited by the nodes
    redis = cr.Redis()
    cluster = None
    try:
        cluster = cr.Cluster("realcast", nodes, redis.url, raw / "cluster_join_rate.server.log")
        cpu_before = sum(cr.proc_cpu(pid) for pid in cluster.pids)
        redis_before = redis.cpu()
        per = clients // nodes
        cmds = [
            cr.loadgen_cmd(
                "connect", [cluster.ports[k]], [cluster.pids[k]],
                ["--clients", str(per), "--rooms", str(rooms), "--window", "128", "--user-offset", str(k * per),
                 "--connect-deadline", "300"],
                320,
            )
            for k in range(nodes)
        ]  # fmt: skip
        with ThreadPoolExecutor(nodes) as pool:
            results = list(
                pool.map(lambda kc: cr.run_loadgen(kc[1], 340, raw / f"cluster_join_rate_gen{kc[0] + 1}.log"),
                         enumerate(cmds))
            )  # fmt: skip
        node_cpu = sum(cr.proc_cpu(pid) for pid in cluster.pids) - cpu_before
        redis_cpu = redis.cpu() - redis_before
        joined = sum(r.get("joined", 0) for r in results)
        elapsed = max(r.get("elapsed_s", 0.0) for r in results)
        errors = [r["error"] for r in results if "error" in r]
        label = "default" if presence_limit is None else presence_limit
        return (
            f"{nodes} nodes, presence_limit {label}: {joined:,} of {per * nodes:,} joined in {elapsed:.1f} s = "
            f"{joined / elapsed if elapsed else 0:,.0f} joins/s; CPU-s per 1,000 joins: nodes "
            f"{node_cpu / joined * 1000 if joined else 0:.2f}, redis {redis_cpu / joined * 1000 if joined else 0:.3f}"
            + (f"; errors: {errors}" if errors else "")
        )
    finally:
        os.environ.pop("REALCAST_PRESENCE_LIMIT", None)
        if cluster is not None:
            cluster.stop()
        redis.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16000)
    p.add_argument("--nodes", type=int, default=8)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--repo", help="a checkout whose realcast the nodes run (default: this one)")
    p.add_argument("--cases", default="default,0", help="presence limits to run, comma-separated ('default': unset)")
    a = p.parse_args()
    if a.repo:
        repo = Path(a.repo).resolve()
        if not (repo / "realcast" / "__main__.py").exists():
            p.error(f"--repo {repo}: no realcast/__main__.py there")
        single.REPO = cr.REPO = repo  # the nodes' PYTHONPATH and working directory
    if a.clients // a.nodes + 64 > 20000 or a.nodes < 1:
        p.error("each node (and its generator) must hold fewer than ~19,900 clients")
    raw = Path(a.out) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for case in a.cases.split(","):
        limit = None if case == "default" else case
        print(one_case(a.nodes, a.clients, a.rooms, limit, raw), flush=True)


if __name__ == "__main__":
    main()
