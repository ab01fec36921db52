"""API load benchmark: the national overview and one trust's observations under concurrent clients.

    uv run python benchmarks/api_load.py [--home DEMO_WORKSPACE] [--seconds 20] [--clients 16]

Builds the demo workspace (or uses ``--home``), starts ``mutual serve`` on 127.0.0.1 as its own process, makes an
API token, then drives the server from a separate process (aiohttp: httpx's client tops out near 800 requests/s
here, below the server): first ``/healthz`` (the floor: no data, no sign-in), then ``GET /api/v1/overview`` and
``GET /api/v1/observations?org=…`` with a national analyst's token, each for a bounded time with concurrent
keep-alive clients. Prints throughput, p50/p95/p99 latency and errors per endpoint,
and as its last line ``api_overview_p95_ms <value>``. Targets on a 2-core machine: p95 < 50 ms at ≥ 1,000
requests/s for the overview.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

DRIVER = r"""
import asyncio, json, sys, time
import aiohttp

base, token, seconds, clients, paths = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]

async def drive(path, auth):
    headers = {"Authorization": f"Bearer {token}"} if auth else {}
    latencies, errors = [], 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        async with session.get(path) as r:  # warm: the first read of a vintage computes it
            await r.read()
        stop = time.perf_counter() + seconds

        async def worker():
            nonlocal errors
            while time.perf_counter() < stop:
                t = time.perf_counter()
                async with session.get(path) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return {"path": path, "requests": len(latencies), "rps": len(latencies) / elapsed, "p50": q(0.50),
            "p95": q(0.95), "p99": q(0.99), "errors": errors}

async def main():
    out = []
    for path in paths:
        out.append(await drive(path, path != "/healthz"))
    print(json.dumps(out))

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_workspace(folder: Path) -> Path:
    from mutual.demo import build_demo

    t = time.perf_counter()
    summary = build_demo(folder / "demo", seed=7, data_dir=None)
    print(f"built the demo workspace in {time.perf_counter() - t:.0f} s")
    return summary.home


def token_and_trust(home: Path) -> tuple[str, str]:
    """A token for a national analyst (made if the workspace has none), and the trust with most values."""
    from mutual.app import open_mutual
    from mutual.web import accounts

    with open_mutual(home) as m:
        users = {u.username: u for u in accounts.list_users(m.sessions)}
        if "bench" not in users:
            accounts.add_user(m.sessions, "bench", accounts.Role.NATIONAL_ANALYST, password=None)
        token = accounts.create_token(m.sessions, "bench", name="api_load")[1]
        trust = m.store.con.execute("SELECT org FROM observation GROUP BY org ORDER BY count(*) DESC LIMIT 1"
                                    ).fetchone()
    return token, str(trust[0]) if trust else "R1H"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="an existing workspace (default: build the demo)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to drive each endpoint")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mutual-api-load-") as tmp:
        home = args.home or demo_workspace(Path(tmp))
        token, trust = token_and_trust(home)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "mutual", "serve", "--home", str(home), "--port", str(port),
                                   "--log-level", "warning"])
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("mutual serve did not start")
                time.sleep(0.3)
            paths = ["/healthz", "/api/v1/overview",
                     f"/api/v1/observations?org={trust}&metric=ga_beds_occupied&page_size=100"]
            done = subprocess.run([sys.executable, "-c", DRIVER, base, token, str(args.seconds), str(args.clients),
                                   *paths], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"load driver failed:\n{done.stderr}")
            results = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"{args.clients} concurrent clients, {args.seconds:.0f} s per endpoint, server and driver in separate "
          "processes on this machine")
    print(f"{'endpoint':70s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} errors")
    for r in results:
        print(f"{r['path']:70s} {r['requests']:9,d} {r['rps']:8,.0f} {r['p50']:8.1f} {r['p95']:8.1f} "
              f"{r['p99']:8.1f} {r['errors']}")
    overview = next(r for r in results if r["path"] == "/api/v1/overview")
    floor = next(r for r in results if r["path"] == "/healthz")
    print(f"overview throughput / health-check throughput: {overview['rps'] / floor['rps']:.2f}")
    print(f"api_overview_p95_ms {overview['p95']:.1f}")


if __name__ == "__main__":
    main()
