"""Controller write throughput as the topology grows (issue 17): pool creates through the API.

For each size (100, 1,000, 10,000 pools in one network) and each database (SQLite; PostgreSQL, a
throwaway server), a fresh database is seeded in-process with that many pools, a real controller
(the production app over TLS, served from a thread of this process) is started on it, and pool
creates are sent through the REST API: sequentially (the latency of one write) and from 4 client
threads at once (throughput). Every create is a real write: validated, committed, audited, its
gateways' documents marked. Run as root or not:

    .venv/bin/python bench/writes.py --out docs/results/writes.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import machine, save

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.controllers
from tests.controllers import start_controller
from tests.pg import Postgres

from cloudgw.api import schemas
from cloudgw.controller import config_writes as writes
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.state import State
from cloudgw.memory import tune_gc


def seed(db: str, pools: int) -> None:
    engine = make_engine(db)
    migrate(engine)
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


def measure(url: str, data_dir: Path, pools: int, count: int) -> dict[str, float]:
    controller = start_controller(data_dir, url)
    try:
        client = controller.client()
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            client.create("pools", {"name": f"s{i}", "network": "big", "site": "a", "range": pool_range(i, 100)})
            latencies.append(time.perf_counter() - started)
        clients = [controller.client() for _ in range(4)]

        def create(i: int) -> None:
            body = {"name": f"c{i}", "network": "big", "site": "b", "range": pool_range(i, 150)}
            clients[i % 4].create("pools", body)

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, range(count)))
        parallel = time.perf_counter() - started
    finally:
        controller.stop()
    return {
        "pools": pools,
        "write_ms_median": round(statistics.median(latencies) * 1000, 2),
        "write_ms_p99": round(sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "sequential_writes_per_s": round(count / sum(latencies), 1),
        "writes_per_s_4_clients": round(count / parallel, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--out", default="writes")
    args = parser.parse_args()
    tune_gc()  # the controller runs in this process: tuned as `cloudgw controller serve` tunes itself
    results: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    postgres = Postgres().start()
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            for database in results:
                with tempfile.TemporaryDirectory() as tmp:
                    if database == "sqlite":
                        url = f"sqlite:///{tmp}/controller.db"
                    else:
                        name = f"writes{size}"
                        admin = make_engine(f"{postgres.base_url}/postgres").execution_options(
                            isolation_level="AUTOCOMMIT"
                        )
                        with admin.connect() as conn:
                            conn.exec_driver_sql(f"CREATE DATABASE {name}")
                        admin.dispose()
                        url = f"{postgres.base_url}/{name}"
                    seed(url, size)
                    result = measure(url, Path(tmp), size, args.writes)
                    print(f"  {database} {size}: {result}", file=sys.stderr)
                    results[database].append(result)
    finally:
        postgres.stop()
    data = {"machine": machine(), "command": f"bench/writes.py --sizes {args.sizes} --writes {args.writes}", **results}
    print(f"saved {save(args.out, data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
