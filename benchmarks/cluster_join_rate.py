"""Join rate of a RealCast cluster: full connects + chat:join per second, with viewer announcements
on (the default) and off (REALCAST_PRESENCE_LIMIT=0), side by side.

    .venv/bin/python benchmarks/cluster_join_rate.py [--clients 16000] [--nodes 8] [--rooms 100]

Nodes and a private redis-server on core 0, one load generator process per node on core 1 (as
cluster_run.py). Each case starts fresh processes; clients are distinct users spread over
--rooms streams. Prints one line per case. A diagnosis aid for the capacity scenario, whose joins
slow down as the streams fill up.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cluster_run as cr


def one_case(nodes: int, clients: int, rooms: int, presence_limit: str | None, raw: Path) -> str:
    if presence_limit is None:
        os.environ.pop("REALCAST_PRESENCE_LIMIT", None)
    else:
        os.environ["REALCAST_PRESENCE_LIMIT"] = presence_limit  # inherited by the nodes
    redis = cr.Redis()
    cluster = None
    try:
        cluster = cr.Cluster("realcast", nodes, redis.url, raw / "cluster_join_rate.server.log")
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
        joined = sum(r.get("joined", 0) for r in results)
        elapsed = max(r.get("elapsed_s", 0.0) for r in results)
        errors = [r["error"] for r in results if "error" in r]
        label = "default" if presence_limit is None else presence_limit
        return (
            f"{nodes} nodes, presence_limit {label}: {joined:,} of {per * nodes:,} joined in {elapsed:.1f} s = "
            f"{joined / elapsed if elapsed else 0:,.0f} joins/s" + (f"; errors: {errors}" if errors else "")
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
    a = p.parse_args()
    if a.clients // a.nodes + 64 > 20000 or a.nodes < 1:
        p.error("each node (and its generator) must hold fewer than ~19,900 clients")
    raw = Path(a.out) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for limit in (None, "0"):
        print(one_case(a.nodes, a.clients, a.rooms, limit, raw), flush=True)


if __name__ == "__main__":
    main()
