"""The admin's view at scale (issue 20): one controller process (TLS, SQLite) with 1,000 sites and
gateways and 100,000 endpoints, made by tests/scale_world.py (the topology through the API, the
gateways' reports written into the database). No root needed.

    .venv/bin/python bench/adminview.py                      # 1,000 gateways, 100,980 endpoints
    .venv/bin/python bench/adminview.py --sites 200 --per-site 10 --screenshot docs/img/topology-200.png

Measures, side by side in one run: API pages, searches and filters (median and p95 of repeated
calls, through one keep-alive connection, as a dashboard makes them) against the unpaged list;
`cloudgw endpoint list` (first page: wall time) and `--all -o json` (peak RSS at three list sizes:
flat means streaming works); the dashboard in headless Chromium (Mapping and Gateways tabs: first
rows shown, a search answered) and a screenshot of the topology.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import free_port, machine, save, wait_healthy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.scale_world
from tests.scale_world import first_address, scale_topology, seed_reports, site_name

from cloudgw.client import Client

CLOUDGW = str(Path(sys.executable).parent / "cloudgw")
CHROMIUM = os.environ.get("CLOUDGW_CHROMIUM", "/usr/bin/chromium")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(call: Any, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 1),
        "runs": runs,
    }


def api_timings(admin: Client, sites: int, runs: int) -> dict[str, Any]:
    def get(path: str, **params: Any) -> Any:
        return lambda: admin.json("GET", path, params=params)

    deep = admin.json("GET", "/api/v1/endpoints", params={"limit": 1, "prefix": f"{_ip(first_address(sites - 2))}/32"})
    some_site = site_name(sites // 2)
    mac_part = f"02:00:{((sites // 2) >> 8) & 255:02x}:{(sites // 2) & 255:02x}:00:1"
    cases = {
        "endpoints first page (limit 50)": get("/api/v1/endpoints", limit=50),
        "endpoints first page (limit 1000)": get("/api/v1/endpoints", limit=1000),
        "endpoints page near the end (cursor)": get("/api/v1/endpoints", limit=50, cursor=deep["next_cursor"]),
        "endpoints search, part of a MAC": get("/api/v1/endpoints", limit=50, q=mac_part),
        "endpoints search, part of an address": get(
            "/api/v1/endpoints", limit=50, q=f"{_ip(first_address(sites // 3))[:-1]}"
        ),
        "endpoints filter site": get("/api/v1/endpoints", limit=50, site=some_site),
        "endpoints filter prefix /16": get("/api/v1/endpoints", limit=50, prefix="10.1.0.0/16"),
        "endpoints filter state=ignored": get("/api/v1/endpoints", limit=50, state="ignored"),
        "gateways first page (limit 50)": get("/api/v1/gateways", limit=50),
        "gateways search": get("/api/v1/gateways", limit=50, q=some_site),
        "gateways filter state=offline": get("/api/v1/gateways", limit=50, state="offline"),
        "connections first page (limit 50)": get("/api/v1/connections", limit=50),
        "sites, every page (limit 1000)": lambda: admin.list("sites"),
        "status (limit 50, counts of all)": get("/api/v1/status", limit=50),
    }
    results = {name: timed(call, runs) for name, call in cases.items()}
    for name, result in results.items():
        say(f"  {name}: median {result['median_ms']} ms, p95 {result['p95_ms']} ms")
    started = time.perf_counter()
    whole = admin.request("GET", "/api/v1/endpoints")
    results["endpoints unpaged (v0.1 behaviour)"] = {
        "median_ms": round((time.perf_counter() - started) * 1000, 1),
        "runs": 1,
        "bytes": len(whole.content),
    }
    say(f"  unpaged: {results['endpoints unpaged (v0.1 behaviour)']}")
    return results


def _ip(value: int) -> str:
    from ipaddress import IPv4Address

    return str(IPv4Address(value))


def cli_timings(env: dict[str, str], sites: int) -> dict[str, Any]:
    def run(*args: str) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
        started = time.perf_counter()
        # a fresh process per run, which reports its own peak RSS
        done = subprocess.run([sys.executable, "-c", _CHILD, CLOUDGW, *args], env=env, capture_output=True, check=True)
        elapsed = time.perf_counter() - started
        peak = json.loads(done.stderr.decode().strip().splitlines()[-1])["peak_rss_mib"]
        return elapsed, peak, done

    results: dict[str, Any] = {}
    elapsed, peak, done = run("endpoint", "list")
    results["endpoint list (first page, table)"] = {"seconds": round(elapsed, 2), "peak_rss_mib": peak}
    elapsed, peak, done = run("--version")
    results["cloudgw --version (start-up alone)"] = {"seconds": round(elapsed, 2), "peak_rss_mib": peak}
    for label, prefix in (("1/16 of them", "10.0.0.0/18"), ("1/4 of them", "10.0.0.0/16"), ("all", "10.0.0.0/8")):
        elapsed, peak, done = run("endpoint", "list", "--all", "-o", "json", "--prefix", prefix)
        count = json.loads(done.stdout)["total"]
        results[f"endpoint list --all -o json ({label}: {count} endpoints)"] = {
            "seconds": round(elapsed, 2),
            "peak_rss_mib": peak,
            "endpoints": count,
            "output_mib": round(len(done.stdout) / 2**20, 1),
        }
    for name, value in results.items():
        say(f"  {name}: {value}")
    return results


# runs the CLI in this interpreter and prints its peak RSS last on stderr (stdout stays the CLI's)
_CHILD = """
import json, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
sys.stdout.flush()
# VmHWM is this program's own peak (ru_maxrss would carry the benchmark's, from before exec)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
peak = int(status["VmHWM"].split()[0]) / 1024
print(json.dumps({"peak_rss_mib": round(peak, 1)}), file=sys.stderr)
sys.exit(code or 0)
"""


def browser_timings(url: str, token: str, screenshot: Path | None, sites: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {}
    flags = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True)
        page = context.new_page()
        page.goto(url + "/")
        page.fill('[data-testid="token"]', token)
        page.click('[data-testid="login-button"]')
        page.wait_for_selector('[data-testid="whoami"]:not(:empty)')
        started = time.perf_counter()
        page.wait_for_selector(f'[data-testid="site-{site_name(sites - 1)}"]', state="attached", timeout=120_000)
        results["topology drawn (every site)"] = round(time.perf_counter() - started, 2)
        for tab, table, search, text in (
            ("mapping", "endpoints-table", "search", f"02:00:00:{(sites // 2) & 255:02x}:00:2"),
            ("gateways", "gateways-table", "gateways-search", site_name(sites // 2)),
        ):
            started = time.perf_counter()
            page.goto(f"{url}/#{tab}")
            page.wait_for_selector(f'[data-testid="{table}"] tbody tr[data-key]', timeout=60_000)
            results[f"{tab}: first rows shown"] = round(time.perf_counter() - started, 2)
            loads = int(page.get_attribute(f'[data-testid="{table}"]', "data-loads") or 0)
            started = time.perf_counter()
            page.fill(f'[data-testid="{search}"]', text)
            deadline = time.monotonic() + 60
            while int(page.get_attribute(f'[data-testid="{table}"]', "data-loads") or 0) <= loads:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{tab}: the search was not answered")
                page.wait_for_timeout(5)  # polling the page's own counter, with a deadline
            results[f"{tab}: search answered (150 ms typing debounce included)"] = round(
                time.perf_counter() - started, 2
            )
            results[f"{tab}: rows in the page"] = page.eval_on_selector_all(
                f'[data-testid="{table}"] tbody tr', "rows => rows.length"
            )
        if screenshot is not None:
            page.goto(url + "/#topology")
            page.wait_for_selector(f'[data-testid="site-{site_name(sites - 1)}"]', state="attached")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.locator('[data-testid="topology"]').screenshot(path=str(screenshot))
            say(f"  screenshot: {screenshot}")
        browser.close()
    for name, value in results.items():
        say(f"  {name}: {value}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=1000, help="sites, one gateway each")
    parser.add_argument(
        "--per-site",
        type=int,
        default=102,
        help="endpoints each joined gateway announces (at most 254; 1 in 100 never joined)",
    )
    parser.add_argument("--runs", type=int, default=20, help="repetitions of each API call")
    parser.add_argument("--screenshot", type=Path, default=None, help="save the topology view here (PNG)")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--out", default="adminview", help="result name under bench/results/, or a .json path")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cgwav-"))
    init = json.loads(
        subprocess.run(
            [CLOUDGW, "controller", "init", "--data-dir", str(workdir), "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    port = free_port()
    server = subprocess.Popen(
        [
            CLOUDGW,
            "controller",
            "serve",
            "--data-dir",
            str(workdir),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        stderr=subprocess.DEVNULL,
    )
    url, ca = f"https://127.0.0.1:{port}", str(workdir / "ca.pem")
    result: dict[str, Any] = {"machine": machine(), "sites": args.sites, "per_site": args.per_site}
    try:
        admin = Client(url, token=init["admin_token"], ca=ca, timeout=600)
        wait_healthy(admin)
        started = time.monotonic()
        admin.json("PUT", "/api/v1/topology", json=scale_topology(args.sites))
        result["topology_apply_s"] = round(time.monotonic() - started, 1)
        written = seed_reports(f"sqlite:///{workdir}/controller.db", args.sites, args.per_site, 100, 20)
        started = time.monotonic()
        total = admin.json("GET", "/api/v1/endpoints", params={"limit": 1})["total"]
        result["endpoints"] = total
        result["first_read_after_reload_s"] = round(time.monotonic() - started, 2)
        say(
            f"{args.sites} sites, {written} endpoints written; "
            f"first read (reload + sort) {result['first_read_after_reload_s']} s"
        )
        result["api"] = api_timings(admin, args.sites, args.runs)
        admin.create("sites", {"name": "zz-after-a-change"})  # a configuration change rebuilds the index
        started = time.perf_counter()
        admin.json("GET", "/api/v1/endpoints", params={"limit": 50})
        result["api"]["endpoints first page right after a configuration change"] = {
            "median_ms": round((time.perf_counter() - started) * 1000, 1),
            "runs": 1,
        }
        env = {
            **os.environ,
            "CLOUDGW_URL": url,
            "CLOUDGW_TOKEN": init["admin_token"],
            "CLOUDGW_CA": ca,
            "COLUMNS": "160",
        }
        result["cli"] = cli_timings(env, args.sites)
        if not args.no_browser:
            result["browser"] = browser_timings(url, init["admin_token"], args.screenshot, args.sites)
        with open(f"/proc/{server.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        result["controller_rss_mib"] = int(fields["VmRSS"].split()[0]) // 1024
    finally:
        server.terminate()
        server.wait(timeout=30)
    path = save(args.out, result)
    print(json.dumps(result, indent=1))
    say(f"saved {path}")


if __name__ == "__main__":
    main()
