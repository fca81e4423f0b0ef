"""One controller, many gateways: a real controller process (TLS, SQLite) and N simulated gateways
in this process: the real Agent, ControllerLink and watch feed, with the in-memory data plane.

Topology: hub and spokes (site s0000 is the hub, every other site connects to it in one network),
each site with a /24 pool and `endpoints / gateways` announced endpoints. A change is one new
endpoint announced at the hub, which every spoke's document carries.

    sudo .venv/bin/python bench/scale.py --gateways 1000 --endpoints 100000 --changes 10

Measures: time for one change to be applied by every affected gateway (p50/p99 over all
gateway x change samples), the controller's own share of it (its cloudgw_watch_delivery_seconds
histogram: commit -> watch response written), full-snapshot time of the biggest and a small
document, controller RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common import ROOT, free_port, machine, save, wait_healthy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.sim.harness
from tests.pg import Postgres
from tests.sim.harness import SimulatedGateway, endpoints_of, topology

from cloudgw.client import AgentClient, Client
from cloudgw.controller.db.engine import make_engine
from cloudgw.lab.measure import summary
from cloudgw.memory import tune_gc

CLOUDGW = str(Path(sys.executable).parent / "cloudgw")


def rss_mib(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mib": int(fields["VmHWM"].split()[0]) / 1024}


def delivery_histogram(admin: Client) -> dict[str, float]:
    """The controller's own count of commit -> watch response (cloudgw_watch_delivery_seconds)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = admin.request("GET", "/metrics").text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "cloudgw_watch_delivery_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    found[sample.labels["le"]] = sample.value
                else:
                    found[sample.name.rsplit("_", 1)[1]] = sample.value
    return found


def histogram_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean and bucket bounds of p50/p99 of what was observed between two scrapes."""
    count = after["count"] - before["count"]
    bounds = sorted((float(le), after[le] - before.get(le, 0.0)) for le in after if le not in ("count", "sum"))
    result = {"n": count, "mean": (after["sum"] - before["sum"]) / count if count else 0.0}
    for name, fraction in (("p50_le", 0.5), ("p99_le", 0.99)):
        result[name] = next((le for le, seen in bounds if seen >= fraction * count), float("inf"))
    return result


def worker(connection: Connection, url: str, workdir: Path, tokens: dict[str, str], ca: str) -> None:
    """A simulator process: its share of the gateways, driven by commands from the main process.
    Several processes, so 1,000 gateways do not queue behind one interpreter lock."""
    tune_gc()  # as `cloudgw agent run` does
    gateways: dict[str, SimulatedGateway] = {}
    # joins are writes, serialised by the controller: a few at a time per process, so none waits
    # past the agent's request timeout behind the others
    with ThreadPoolExecutor(max_workers=2) as pool:
        for gateway in pool.map(lambda n: SimulatedGateway(n, url, workdir, tokens[n]), tokens):
            gateways[gateway.name] = gateway
    connection.send({name: g.link._credential for name, g in gateways.items()})
    try:
        while True:
            command, argument = connection.recv()
            if command == "start":
                for gateway in gateways.values():
                    gateway.source.start()
                connection.send(True)
            elif command == "wait":  # until each gateway applied its target revision (or the deadline)
                targets, deadline = argument
                targets = {name: revision for name, revision in targets.items() if name in gateways}
                # recorded(), not applied(): the agent holds a document a moment before its time is
                # recorded, and a reply read in that moment reported an applied change as missing
                while time.time() < deadline and not all(gateways[n].recorded(r) for n, r in targets.items()):
                    time.sleep(0.005)
                connection.send({name: gateways[name].times(revision) for name, revision in targets.items()})
            elif command == "diagnose":  # what a gateway that missed a change had at that moment
                connection.send({name: diagnosis(gateways[name]) for name in argument if name in gateways})
            elif command == "stop":
                break
    finally:
        for gateway in gateways.values():
            gateway.source.stop()
        connection.send(True)


def diagnosis(gateway: SimulatedGateway) -> dict[str, Any]:
    source = gateway.source
    return {
        "document": source.revision,
        "applied": gateway.applied(),
        "connected": source.connected,
        "error": source.error,
        "watching": bool(source._thread and source._thread.is_alive()),
        "received": sorted(gateway.received_at)[-3:],
    }


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="simulator processes (default: one per 125 gateways)")
    parser.add_argument("--out", default="scale", help="result name under bench/results/, or a .json path")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server instead of SQLite")
    parser.add_argument(
        "--replicas", type=int, default=1, help="controller processes on the one database (more than one: --postgres)"
    )
    args = parser.parse_args()
    if args.replicas > 1 and not args.postgres:
        parser.error("--replicas above 1 needs --postgres (replicas share one PostgreSQL database)")
    per_site = args.endpoints // args.gateways
    workers = args.workers or max(1, min(8, -(-args.gateways // 125)))
    workdir = Path(tempfile.mkdtemp(prefix="cgwbs-"))
    postgres = Postgres().start() if args.postgres else None
    db: list[str] = []
    if postgres is not None:
        admin_db = make_engine(f"{postgres.base_url}/postgres").execution_options(isolation_level="AUTOCOMMIT")
        with admin_db.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE scale")
        admin_db.dispose()
        db = ["--db", f"{postgres.base_url}/scale"]
    init = json.loads(
        subprocess.run(
            [CLOUDGW, "controller", "init", "--data-dir", str(workdir / "controller"), *db, "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    log_base = Path(args.out[:-5]) if args.out.endswith(".json") else ROOT / "bench" / "results" / args.out
    log_base.parent.mkdir(parents=True, exist_ok=True)
    servers: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for replica in range(args.replicas):
        data_dir = workdir / ("controller" if replica == 0 else f"controller-{replica}")
        if replica:
            shutil.copytree(workdir / "controller", data_dir)  # replicas share the CA
        port = free_port()
        servers.append(
            subprocess.Popen(
                [
                    CLOUDGW,
                    "controller",
                    "serve",
                    "--data-dir",
                    str(data_dir),
                    *db,
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                ],
                # kept beside the result: a failure at 10,000 gateways must say what it was
                stderr=open(log_base.with_name(f"{log_base.name}-controller{replica}.log"), "wb"),  # noqa: SIM115
                # every simulated gateway connects from 127.0.0.1: lift the per-address limit above their count
                env={
                    **os.environ,
                    "CLOUDGW_MAX_CONNECTIONS_PER_SOURCE": str(args.gateways + 64),
                    "CLOUDGW_MAX_CONNECTIONS": str(max(4096, 2 * args.gateways + 64)),
                },
            )
        )
        urls.append(f"https://127.0.0.1:{port}")
    server = servers[0]
    url, ca = urls[0], str(workdir / "controller" / "ca.pem")
    processes: list[tuple[multiprocessing.Process, Connection]] = []
    names = [f"gw-s{i:04d}" for i in range(args.gateways)]

    def ask(command: str, argument: Any = None) -> list[Any]:
        for _, connection in processes:
            connection.send((command, argument))
        return [connection.recv() for _, connection in processes]

    try:
        admins = [Client(u, token=init["admin_token"], ca=ca, timeout=600) for u in urls]
        for each in admins:
            wait_healthy(each)
        admin = admins[0]
        started = time.monotonic()
        admin.json("PUT", "/api/v1/topology", json=topology(args.gateways))
        say(f"topology of {args.gateways} sites applied in {time.monotonic() - started:.1f}s")

        tokens = {
            n: admin.create("tokens", {"name": f"join-{n}", "role": "join", "gateway": n})["token"] for n in names
        }
        started = time.monotonic()
        context = multiprocessing.get_context("fork")
        for w in range(workers):
            mine = {n: tokens[n] for n in names[w::workers]}
            here, there = context.Pipe()
            # with replicas, each simulator process watches one of them (the hub's, worker 0, the first)
            here_url = urls[w % len(urls)]
            process = context.Process(target=worker, args=(there, here_url, workdir, mine, ca), daemon=True)
            process.start()
            processes.append((process, here))
        credentials: dict[str, str] = {}
        for part in (connection.recv() for _, connection in processes):
            credentials.update(part)
        say(f"{len(credentials)} gateways joined in {time.monotonic() - started:.1f}s ({workers} simulator processes)")

        def announce(index: int) -> int:
            with AgentClient(url, token=credentials[names[index]], ca=ca, timeout=600) as agent:
                return int(agent.announce("big", endpoints_of(index, per_site)).revision)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(announce, range(args.gateways)))
        say(f"{per_site * args.gateways} endpoints announced in {time.monotonic() - started:.1f}s")

        started = time.monotonic()
        ask("start")
        targets = {g["name"]: g["doc_revision"] for g in admin.list("gateways")}
        ask("wait", (targets, time.time() + 900))
        say(f"all gateways applied their first document in {time.monotonic() - started:.1f}s")

        latencies: list[float] = []
        delivered: list[float] = []
        committed: list[float] = []
        late: list[dict[str, Any]] = []
        hub = AgentClient(url, token=credentials[names[0]], ca=ca, timeout=600)  # kept open, as an agent does
        hub.announce("big", endpoints_of(0, per_site))
        histograms_before = [delivery_histogram(each) for each in admins]
        for change in range(args.changes):
            body = endpoints_of(0, per_site, extra=change + 1)
            t0 = time.time()
            revision = int(hub.announce("big", body).revision)
            committed.append(time.time() - t0)
            times: dict[str, tuple[float | None, float | None]] = {}
            for part in ask("wait", ({n: revision for n in names[1:]}, time.time() + 120)):
                times.update(part)
            missing = [n for n, (_, applied) in times.items() if applied is None]
            if missing:  # reported, not fatal: the rest of the measurement still stands
                states: dict[str, Any] = {}
                for part in ask("diagnose", missing):
                    states.update(part)
                late.append({"change": change + 1, "revision": revision, "gateways": missing, "states": states})
                say(f"  states: {states}")
                say(f"  change {change + 1}: {len(missing)} gateways did not apply it within 120 s: {missing[:5]}")
            batch = [applied - t0 for _, applied in times.values() if applied is not None]
            latencies.extend(batch)
            delivered.extend(received - t0 for received, _ in times.values() if received is not None)
            if not batch:
                continue
            say(
                f"  change {change + 1}: p50 {summary(batch)['p50'] * 1000:.0f} ms, "
                f"max {max(batch) * 1000:.0f} ms over {len(batch)} gateways"
            )
        deliveries = [
            histogram_summary(b, delivery_histogram(each)) for b, each in zip(histograms_before, admins, strict=True)
        ]
        controller_delivery = deliveries[0]

        snapshots = {}
        for label, name in (("hub", names[0]), ("spoke", names[-1])):
            durations = []
            with AgentClient(url, token=credentials[name], ca=ca, timeout=600) as agent:
                for _ in range(3):
                    t0 = time.perf_counter()
                    document = agent.watch(-1, wait=0)
                    durations.append(time.perf_counter() - t0)
            count = sum(len(n["remote_endpoints"]) for n in document["networks"])
            snapshots[label] = {
                "first_s": round(durations[0], 3),
                "cached_s": round(min(durations[1:]), 3),
                "remote_endpoints": count,
                "peers": len(document["peers"]),
            }
        memory = rss_mib(server.pid)
        memories = [rss_mib(each.pid) for each in servers]
    finally:
        if processes:
            with contextlib.suppress(OSError, EOFError):
                ask("stop")
            for process, _ in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        for each in servers:
            each.terminate()
        for each in servers:
            each.wait(timeout=30)
        if postgres is not None:
            postgres.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)

    stats = summary(latencies)
    result = {
        "machine": machine(),
        "gateways": args.gateways,
        "endpoints": per_site * args.gateways,
        "changes": args.changes,
        "change_to_every_gateway_s": stats,
        "change_committed_s": summary(committed),
        "change_delivered_s": summary(delivered),
        "controller_delivery_s": controller_delivery,
        "not_applied": late,
        "snapshot": snapshots,
        "controller": {k: round(v, 1) for k, v in memory.items()},
        "database": "postgresql" if args.postgres else "sqlite",
        "replicas": [
            {"controller_delivery_s": d, **{k: round(v, 1) for k, v in m.items()}}
            for d, m in zip(deliveries, memories, strict=True)
        ],
    }
    print(json.dumps(result, indent=1))
    save(args.out, result)


if __name__ == "__main__":
    main()
