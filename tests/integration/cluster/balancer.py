"""Real load balancers in front of real ``realcast serve`` nodes, configured from deploy/.

The balancer's configuration is the shipped file with only the addresses changed (the listen
address and one address per node), so the tests exercise the routing rules an operator deploys.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..realcast.harness import API_KEY_A, APP_A, SECRET_A
from ..realcast.process import ROOT, ServerProcess, realcast_env

DEPLOY = ROOT / "deploy"
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_env() -> dict[str, str]:
    """Every node serves the same app (the tests' APP_A), as a cluster's nodes do."""
    return realcast_env(
        REALCAST_APP_ID=APP_A.app_id, REALCAST_JWT_SECRET=SECRET_A, REALCAST_API_KEY=API_KEY_A
    )


@contextmanager
def realcast_nodes(data_root: Path, node_ids: Sequence[str]) -> Iterator[dict[str, ServerProcess]]:
    """One ``realcast serve --node-id ID`` per id, each with its own data directory and port."""
    nodes: dict[str, ServerProcess] = {}
    try:
        for node_id in node_ids:
            nodes[node_id] = ServerProcess(
                "--node-id", node_id, "--data-dir", str(data_root / node_id), env=node_env()
            )
        yield nodes
    finally:
        for node in nodes.values():
            if not node.stderr.closed:  # not stopped by the test already
                node.stop()


def haproxy_config(port: int, node_ports: dict[str, int]) -> str:
    """deploy/haproxy.cfg listening on 127.0.0.1:port, its servers n1, n2, ... at node_ports."""
    text = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    text, binds = re.subn(r"(?m)^(\s*)bind 0\.0\.0\.0:8080$", rf"\g<1>bind 127.0.0.1:{port}", text)
    assert binds == 1, "deploy/haproxy.cfg: the bind line changed; update this test"
    # This machine's hard limit on open files is far below the sample's 100,000 connections.
    text = re.sub(r"(?m)^(\s*)maxconn \d+$", r"\g<1>maxconn 2000", text)
    return _sample_addresses_replaced(text, node_ports, "deploy/haproxy.cfg")


def nginx_config(port: int, node_ports: dict[str, int], work: Path) -> str:
    """deploy/nginx.conf listening on 127.0.0.1:port with one upstream per node, run unprivileged."""
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    text, count = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", text)
    assert count == 1, "deploy/nginx.conf: the listen line changed; update this test"
    text = _sample_addresses_replaced(text, node_ports, "deploy/nginx.conf")
    # Unprivileged: no user switch, pid and temp files in the test's directory, logs to stderr.
    text = re.sub(r"(?m)^user .*\n", "", text)
    text = re.sub(r"(?m)^pid .*\n", f"pid {work}/nginx.pid;\n", text)
    text = re.sub(r"(?m)^(\s*)error_log .*$", r"\g<1>error_log stderr warn;", text)
    text = re.sub(r"(?m)^(\s*)access_log .*$", r"\g<1>access_log off;", text)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {work}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", "http {\n" + temp_paths + "\n", 1)


def _sample_addresses_replaced(text: str, node_ports: dict[str, int], name: str) -> str:
    """The sample nodes n1, n2 are at 10.0.0.11:8080, 10.0.0.12:8080; put them at node_ports."""
    assert list(node_ports) == ["n1", "n2"], "the deploy samples name two nodes, n1 and n2"
    for index, node_port in enumerate(node_ports.values(), start=1):
        sample = f"10.0.0.1{index}:8080"
        assert sample in text, f"{name}: no sample address {sample}"
        text = text.replace(sample, f"127.0.0.1:{node_port}")
    return text


class Balancer:
    """A balancer subprocess (haproxy or nginx) in the foreground, stopped by ``stop()``."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(argv, stdout=self.output, stderr=subprocess.STDOUT, text=True)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        log = self.log()
        self.stop()
        raise RuntimeError(f"balancer did not start: {log}")

    def log(self) -> str:
        self.output.seek(0)
        return self.output.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if not self.output.closed:
            self.output.close()


def start_haproxy(work: Path, node_ports: dict[str, int]) -> Balancer:
    assert HAPROXY is not None
    port = free_port()
    config = work / "haproxy.cfg"
    config.write_text(haproxy_config(port, node_ports), encoding="utf-8")
    return Balancer([HAPROXY, "-db", "-f", str(config)], port)


def start_nginx(work: Path, node_ports: dict[str, int]) -> Balancer:
    assert NGINX is not None
    port = free_port()
    config = work / "nginx.conf"
    config.write_text(nginx_config(port, node_ports, work), encoding="utf-8")
    return Balancer([NGINX, "-e", "stderr", "-p", str(work), "-c", str(config), "-g", "daemon off;"], port)
