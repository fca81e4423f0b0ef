"""Controller write throughput as the topology grows (issue 17): pool creates through the API.

For each size (100, 1,000, 10,000 pools in one network) and each database (SQLite; PostgreSQL, a
throwaway server), a fresh database is initialised (`cloudgw controller init`) and seeded with that
many pools, a real controller is started on it in its own process (`cloudgw controller serve`, TLS,
as deployed), and pool creates are sent through the REST API from this process: sequentially (the
latency of one write) and from 4 client threads at once (throughput). PostgreSQL is measured with
one controller and with two replicas on the one database. Every create is a real write:
validated, committed, audited, its gateways' documents marked. Run as root or not:

    .venv/bin/python bench/writes.py --out docs/results/writes.json

(Until 2026-11-30 the controller was served from a thread of this process; its clients then
competed with it for one interpreter lock, which cost the 4-client figure most.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import free_port, machine, save, wait_healthy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.pg
from tests.pg import Postgres

from cloudgw.api import schemas
from cloudgw.client.api import Client
from cloudgw.controller import config_writes as writes
from cloudgw.controller.db.engine import make_engine
from cloudgw.controller.state import State

CLOUDGW = str(Path(sys.executable).parent / "cloudgw")


def seed(db: str, pools: int) -> None:
    engine = make_engine(db)  # initialised (migrated) by `controller init`
    state = State(engine)
    with state.write("bench") as change:
        writes.site_create(change, schemas.SiteCreate(name="a"))
        writes.site_create(change, schemas.SiteCreate(name="b"))
        writes.network_create(change, schemas.NetworkCreate(name="big", cidr="10.0.0.0/8"))
    batch = 1000
    for start in range(0, pools, batch):
        with state.write("bench") as change:
            for i in range(start, min(pools, start + batch)):
                body = {"name": f"p{i}", "network": "big", "site": "ab"[i % 2], "range": pool_range(i)}
                writes.pool_create(change, schemas.PoolCreate(**body))
    engine.dispose()


def pool_range(i: int, base: int = 0) -> str:
    return f"10.{base + i // 256}.{i % 256}.16/28"


def serve(data_dir: Path, db: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [CLOUDGW, "controller", "serve", "--data-dir", str(data_dir), "--db", db]
    server = subprocess.Popen(
        [*command, "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "controller.log", "wb"),  # noqa: SIM115
    )
    return server, f"https://127.0.0.1:{port}"


def measure(db: str, data_dir: Path, pools: int, count: int, replicas: int = 1) -> dict[str, float]:
    """`replicas` controllers on the one database (PostgreSQL): each client's writes alternate
    between them, so every write follows one the other replica made (the worst case for catching
    up); the 4 clients are spread over them."""
    init = json.loads(
        subprocess.run(
            [CLOUDGW, "controller", "init", "--data-dir", str(data_dir), "--db", db, "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    seed(db, pools)
    servers, urls = [], []
    for replica in range(replicas):
        replica_dir = data_dir if replica == 0 else data_dir.with_name(f"{data_dir.name}-{replica}")
        if replica:
            shutil.copytree(data_dir, replica_dir)  # replicas share the CA
        server, url = serve(replica_dir, db)
        servers.append(server)
        urls.append(url)
    try:
        ca = str(data_dir / "ca.pem")
        clients = [Client(urls[i % replicas], token=init["admin_token"], ca=ca, timeout=60) for i in range(4)]
        for client in clients[:replicas]:
            wait_healthy(client)
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            body = {"name": f"s{i}", "network": "big", "site": "a", "range": pool_range(i, 100)}
            clients[i % replicas].create("pools", body)
            latencies.append(time.perf_counter() - started)

        def create(i: int) -> None:
            body = {"name": f"c{i}", "network": "big", "site": "b", "range": pool_range(i, 150)}
            clients[i % 4].create("pools", body)

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, range(count)))
        parallel = time.perf_counter() - started
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    return {
        "pools": pools,
        "replicas": replicas,
        "write_ms_median": round(statistics.median(latencies) * 1000, 2),
        "write_ms_p99": round(sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "sequential_writes_per_s": round(count / sum(latencies), 1),
        "writes_per_s_4_clients": round(count / parallel, 1),
    }


DATABASES = ("sqlite", "postgresql", "postgresql_2_replicas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--out", default="writes")
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help=f"which set-ups to measure, comma-separated, of: {', '.join(DATABASES)}",
    )
    args = parser.parse_args()
    chosen = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = sorted(set(chosen) - set(DATABASES))
    if unknown or not chosen:
        parser.error(f"--databases: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(DATABASES)}")
    results: dict[str, list[dict[str, float]]] = {d: [] for d in DATABASES if d in chosen}
    postgres = Postgres().start()
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            for database in results:
                with tempfile.TemporaryDirectory() as tmp:
                    if database == "sqlite":
                        url = f"sqlite:///{tmp}/controller.db"
                    else:
                        name = f"writes{size}_{len(database)}"
                        admin = make_engine(f"{postgres.base_url}/postgres").execution_options(
                            isolation_level="AUTOCOMMIT"
                        )
                        with admin.connect() as conn:
                            conn.exec_driver_sql(f"CREATE DATABASE {name}")
                        admin.dispose()
                        url = f"{postgres.base_url}/{name}"
                    replicas = 2 if database.endswith("2_replicas") else 1
                    result = measure(url, Path(tmp) / "controller", size, args.writes, replicas)
                    print(f"  {database} {size}: {result}", file=sys.stderr)
                    results[database].append(result)
    finally:
        postgres.stop()
    command = f"bench/writes.py --sizes {args.sizes} --writes {args.writes} --databases {','.join(results)}"
    data = {"machine": machine(), "command": command, **results}
    print(f"saved {save(args.out, data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
