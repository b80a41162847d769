"""GET latency under load: p50 / p99 at 100 concurrent clients, idle server vs one with a search running.

Starts a real `nas serve` (SQLite, local Ray) on 127.0.0.1, measures the idle server, then queues
a hybrid-small search and measures again while it trains; both in one run, ratios printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.server import Server, wait_for  # noqa: E402


async def load(url: str, token: str, paths: list[str], clients: int, requests_each: int) -> list[float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=60) as http:

        async def client(i: int) -> None:
            for k in range(requests_each):
                t0 = time.perf_counter()
                r = await http.get(paths[(i + k) % len(paths)])
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text

        await asyncio.gather(*[client(i) for i in range(clients)])
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10, help="requests per client per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data").start()
        try:
            c = server.client()
            parked = c.post("/api/v1/searches", json={"space": "hybrid-tiny", "dataset": {"name": "digits"}}).json()
            c.post(f"/api/v1/searches/{parked['id']}/cancel")
            sid = parked["id"]
            paths = ["/healthz", "/api/v1/searches", f"/api/v1/searches/{sid}",
                     f"/api/v1/searches/{sid}/candidates", f"/api/v1/searches/{sid}/front"]
            idle = asyncio.run(load(server.url, server.admin_token, paths, args.clients, args.requests))
            busy_id = c.post("/api/v1/searches", json={"space": "hybrid-small", "dataset": {"name": "digits"}}).json()["id"]
            wait_for(c, busy_id, lambda b: b["phase"] == "train" and b["step"] > 5, timeout=300)
            busy = asyncio.run(load(server.url, server.admin_token, paths, args.clients, args.requests))
            c.post(f"/api/v1/searches/{busy_id}/cancel")
        except Exception:
            print(server.log.read_text()[-4000:])
            raise
        finally:
            server.kill()
    print(f"{args.clients} concurrent clients x {args.requests} GETs over {len(paths)} endpoints (SQLite, 2 cores)")
    print(f"{'':<18} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'idle server':<18} {pct(idle, 50):>8.1f} {pct(idle, 99):>8.1f}")
    print(f"{'search running':<18} {pct(busy, 50):>8.1f} {pct(busy, 99):>8.1f}")
    print(f"ratio running/idle: p50 {pct(busy, 50) / pct(idle, 50):.2f}, p99 {pct(busy, 99) / pct(idle, 99):.2f}")


if __name__ == "__main__":
    main()
