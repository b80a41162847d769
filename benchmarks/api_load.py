"""API throughput and tail latency under load, measured with `hey` (a load generator that is not Python,
so it does not take the server's CPU the way a Python client would).

Starts a real `nas serve` (SQLite, local Ray) on 127.0.0.1. On the idle server it loads `/healthz` and the
authenticated `GET /api/v1/searches/{id}` in turn at the same concurrency; then it queues a hybrid-small
search and loads `GET /api/v1/searches/{id}` again while the search trains. Printed side by side:
requests/s of the authenticated read over /healthz's, and p99 while training over idle.
Needs `hey` (Debian: apt-get install -y hey).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.server import Server, wait_for  # noqa: E402


def hey(url: str, seconds: int, connections: int, token: str | None = None) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) of `seconds` of load at `connections` concurrent connections."""
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(connections)]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    if set(codes) != {"200"}:
        raise RuntimeError(f"non-200 responses from {url}: {codes}\n{out}")

    def latency(p: int) -> float:
        return float(re.search(rf"{p}% in ([\d.]+) secs", out).group(1)) * 1e3  # type: ignore[union-attr]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rate, "p50": latency(50), "p99": latency(99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10, help="of load per measurement")
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("this benchmark needs `hey` (Debian: apt-get install -y hey)")
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data").start()
        try:
            c = server.client()
            parked = c.post("/api/v1/searches", json={"space": "hybrid-tiny", "dataset": {"name": "digits"}}).json()
            c.post(f"/api/v1/searches/{parked['id']}/cancel")
            read = f"{server.url}/api/v1/searches/{parked['id']}"
            hey(read, 2, args.connections, server.admin_token)  # warm-up
            rows = {"healthz (idle)": hey(f"{server.url}/healthz", args.seconds, args.connections),
                    "GET search (idle)": hey(read, args.seconds, args.connections, server.admin_token)}
            busy = c.post("/api/v1/searches", json={"space": "hybrid-small", "dataset": {"name": "digits"}}).json()
            wait_for(c, busy["id"], lambda b: b["phase"] == "train" and b["step"] > 5, timeout=300)
            rows["GET search (training)"] = hey(read, args.seconds, args.connections, server.admin_token)
            c.post(f"/api/v1/searches/{busy['id']}/cancel")
        except Exception:
            print(server.log.read_text()[-4000:])
            raise
        finally:
            server.kill()
    print(f"hey, {args.connections} connections, {args.seconds} s each (SQLite, 2 cores shared with the generator)")
    print(f"{'':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in rows.items():
        print(f"{name:<24} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f}")
    idle, healthz, training = rows["GET search (idle)"], rows["healthz (idle)"], rows["GET search (training)"]
    print(f"authenticated read / healthz, req/s: {idle['rps'] / healthz['rps']:.2f} (target >= 0.5)")
    print(f"p99 training / idle: {training['p99'] / idle['p99']:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
