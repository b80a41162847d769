"""Start a real `nas serve` (API + dispatcher + local Ray) on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TINY_SEARCH = {
    "space": "hybrid-tiny", "dataset": {"name": "digits"},
    "train": {"steps": 40, "batch_size": 32, "checkpoint_every": 5, "warmup_steps": 2},
    "search": {"evaluations": 6, "population": 3, "bn_batches": 2},
    "finalize": {"enabled": True, "top_k": 1, "epochs": 1},
    "trust": {"enabled": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, database_url: str | None = None, lease_seconds: float = 8.0,
                 admin_token: str = "nas_test_admin_token", env: dict[str, str] | None = None):
        self.data_dir, self.database_url, self.env = data_dir, database_url, env or {}
        self.lease_seconds, self.admin_token = lease_seconds, admin_token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 180) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"NAS_LEASE_SECONDS": str(self.lease_seconds), "NAS_ADMIN_TOKEN": self.admin_token,
                            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1",
                            "NAS_CACHE_DIR": str(self.data_dir / "cache")}
        env.pop("NAS_DATABASE_URL", None)
        env |= self.env
        if self.database_url:
            env["NAS_DATABASE_URL"] = self.database_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server did not come up: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server's whole process group (API, dispatcher, its local Ray)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        time.sleep(1)

    def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM to the server process alone (what systemd, Docker and Kubernetes send); its exit code, or
        None if it did not exit within `timeout` (then the whole group is killed)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever outlived it
        except ProcessLookupError:
            pass
        return code

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def follow_events(client: httpx.Client, job_id: str, resource: str = "searches",
                  timeout: float = 600) -> list[tuple[str, dict]]:
    """Read a search's (or, with resource 'jobs', any job's) SSE stream until it ends; returns (event, data) pairs."""
    events: list[tuple[str, dict]] = []
    kind = None
    with client.stream("GET", f"/api/v1/{resource}/{job_id}/events", timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                events.append((kind, json.loads(line[6:])))
                if kind == "end":
                    return events
    return events


def wait_for(client: httpx.Client, job_id: str, predicate, timeout: float = 600, poll: float = 0.5) -> dict:
    """The job (of any kind) once `predicate` holds for it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}").json()
        if predicate(body):
            return body
        time.sleep(poll)
    raise AssertionError(f"job {job_id} never reached the expected state: {body}")
