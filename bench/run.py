"""The whole benchmark in one command: data plane side by side with the peers, convergence, kernel
programming and controller scale; raw results in bench/results/<profile>/, a summary in
bench/results/<profile>/bench.json and (full profile) the tables of docs/benchmarks.md.

    sudo .venv/bin/python bench/run.py               # make bench: about 30 minutes
    sudo .venv/bin/python bench/run.py --quick       # make bench-quick: under 3 minutes, CI's smoke test
    sudo .venv/bin/python bench/run.py --only convergence,kernel

The data plane is measured by ../shared/bench/peers.sh (set CLOUDGW_PEERS_SH to use another copy)
with bench/cases.sh adding cloudgw and Debian 12's wireguard-go, so every tool runs on the same
namespace topology, interleaved (the whole matrix once per repetition).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT, machine
from report import render_tables, replace_generated

BENCH = ROOT / "bench"
PYTHON = sys.executable
DATAPLANE_TESTS = {"tcp1": "mbps", "tcp4": "mbps", "udp": "mbps", "ping": "rtt_med_ms"}


@dataclass(frozen=True)
class Profile:
    name: str
    reps: int
    seconds: int
    quiet_wait: int
    cases: tuple[str, ...]
    trials: int
    kernel_counts: tuple[int, ...]
    gateways: int
    endpoints: int
    changes: int
    sections: tuple[str, ...] = ("dataplane", "convergence", "kernel", "scale")


FULL = Profile(
    name="full",
    reps=3,
    seconds=8,
    quiet_wait=60,
    cases=(
        "plain",
        "vxlan",
        "wireguard-go",
        "wireguard-go-deb12",
        "cloudgw",
        "nebula",
        "tinc-router",
        "openvpn",
    ),
    trials=30,
    kernel_counts=(1000, 10000),
    gateways=1000,
    endpoints=100_000,
    changes=10,
)
QUICK = Profile(
    name="quick",
    reps=1,
    seconds=2,
    quiet_wait=5,
    cases=("plain", "wireguard-go", "cloudgw"),
    trials=5,
    kernel_counts=(1000,),
    gateways=20,
    endpoints=2000,
    changes=3,
)


def find_peers_sh() -> Path | None:
    candidates = [
        os.environ.get("CLOUDGW_PEERS_SH"),
        ROOT.parent / "shared/bench/peers.sh",
        "/work/shared/bench/peers.sh",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


REUSE: set[Path] = set()  # raw result files to read instead of measuring again (--reuse)


def reusing(result: Path) -> bool:
    """True if --reuse asked for this raw result and it is there (then the section is not run)."""
    if result in REUSE and result.exists():
        say(f"  reusing {result} (--reuse)")
        return True
    return False


def run_logged(cmd: list[str], log: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a benchmark step; its output goes to a log file (shown if the step fails)."""
    with open(log, "w") as handle:
        result = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=ROOT, **kwargs)
    if result.returncode != 0:
        tail = log.read_text().splitlines()[-20:]
        raise SystemExit(
            f"bench: {' '.join(cmd[:3])}... failed ({result.returncode}); last lines of {log}:\n" + "\n".join(tail)
        )
    return result


def dataplane(profile: Profile, out: Path) -> dict[str, Any]:
    peers = find_peers_sh()
    if peers is None:
        raise SystemExit("bench: peers.sh not found; set CLOUDGW_PEERS_SH=/path/to/shared/bench/peers.sh")
    cases = list(profile.cases)
    raw = out / "dataplane.jsonl"
    if not reusing(raw):
        env = dict(os.environ, CLOUDGW=str(Path(PYTHON).parent / "cloudgw"))
        if "wireguard-go-deb12" in cases or any(c in cases for c in ("nebula", "tinc-router", "openvpn")):
            run_logged(["bash", str(BENCH / "install-peers.sh")], out / "install-peers.log")
            env["WG_DEB12_DIR"] = str(BENCH / ".cache/wireguard-go-deb12")
        raw.unlink(missing_ok=True)
        cmd = ["bash", str(peers), "-r", str(profile.reps), "-t", str(profile.seconds), "-q", str(profile.quiet_wait)]
        cmd += ["-f", str(BENCH / "cases.sh"), "-o", str(raw), *cases]
        run_logged(cmd, out / "dataplane.log", env=env)
    rows = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
    return {
        "peers_sh": str(peers),
        "reps": profile.reps,
        "seconds": profile.seconds,
        **summarize_dataplane(rows, cases),
        "raw": rows,
    }


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize_dataplane(rows: list[dict[str, Any]], cases: list[str]) -> dict[str, Any]:
    """Per case and test: median, min and max over the repetitions; cloudgw's ratio to each case."""
    table: dict[str, dict[str, Any]] = {}
    for case in cases:
        mine = [r for r in rows if r["case"] == case]
        info = next((r for r in mine if r["test"] == "info"), {})
        entry: dict[str, Any] = {"desc": info.get("desc"), "version": info.get("version"), "mtu": info.get("mtu")}
        entry["errors"] = sorted({str(r["error"]) for r in mine if "error" in r})
        for test, key in DATAPLANE_TESTS.items():
            entry[test] = spread([r[key] for r in mine if r["test"] == test and r.get(key) is not None])
        entry["udp_loss_pct"] = spread([r["loss_pct"] for r in mine if r["test"] == "udp" and "loss_pct" in r])
        entry["rtt_p99_ms"] = spread([r["rtt_p99_ms"] for r in mine if r["test"] == "ping" and "rtt_p99_ms" in r])
        entry["tun_cpu_pct"] = spread([r["tun_cpu_pct"] for r in mine if r["test"] == "tcp1" and "tun_cpu_pct" in r])
        entry["guard_drops"] = sum(int(r.get("wan_cleartext_drops") or 0) for r in mine if r["test"] == "guard")
        table[case] = entry
    ratios: dict[str, dict[str, float | None]] = {}
    if "cloudgw" in table:
        ours = table["cloudgw"]
        for case, entry in table.items():
            if case == "cloudgw":
                continue
            ratios[case] = {}
            for test in ("tcp1", "tcp4", "udp"):
                a, b = ours.get(test), entry.get(test)
                ratios[case][test] = round(a["median"] / b["median"], 3) if a and b and b["median"] else None
            a, b = ours.get("ping"), entry.get("ping")
            ratios[case]["added_rtt_ms"] = round(a["median"] - b["median"], 3) if a and b else None
    return {"cases": table, "cloudgw_ratio": ratios}


def convergence(profile: Profile, out: Path) -> dict[str, Any]:
    if not reusing(out / "convergence.json"):
        run_logged(
            [
                PYTHON,
                str(BENCH / "convergence.py"),
                "--trials",
                str(profile.trials),
                "--out",
                str(out / "convergence.json"),
            ],
            out / "convergence.log",
        )
    data = json.loads((out / "convergence.json").read_text())
    return {"trials": profile.trials, "seconds": data["summary"]}


def kernel(profile: Profile, out: Path) -> dict[str, Any]:
    counts = [str(c) for c in profile.kernel_counts]
    if not reusing(out / "kernel.json"):
        command = [PYTHON, str(BENCH / "kernel_program.py"), "--out", str(out / "kernel.json"), *counts]
        run_logged(command, out / "kernel.log")
    return {"runs": json.loads((out / "kernel.json").read_text())}


def scale(profile: Profile, out: Path) -> dict[str, Any]:
    cmd = [PYTHON, str(BENCH / "scale.py"), "--gateways", str(profile.gateways), "--endpoints", str(profile.endpoints)]
    cmd += ["--changes", str(profile.changes), "--out", str(out / "scale.json")]
    if not reusing(out / "scale.json"):
        run_logged(cmd, out / "scale.log")
    data: dict[str, Any] = json.loads((out / "scale.json").read_text())
    data.pop("machine", None)
    return data


SECTIONS = {"dataplane": dataplane, "convergence": convergence, "kernel": kernel, "scale": scale}


def missing_numbers(results: dict[str, Any]) -> list[str]:
    """What a run should have measured and did not: the smoke test's only check."""
    problems = []
    data = results.get("dataplane")
    if data is not None:
        for case, entry in data["cases"].items():
            problems += [f"dataplane {case}: {error}" for error in entry["errors"]]
            problems += [f"dataplane {case}: no {test} result" for test in DATAPLANE_TESTS if entry[test] is None]
            if entry["guard_drops"]:
                problems.append(f"dataplane {case}: {entry['guard_drops']} cleartext packets on the WAN")
    if "convergence" in results and not results["convergence"]["seconds"].get("n"):
        problems.append("convergence: no trial finished")
    for run in results.get("kernel", {}).get("runs", []):
        if run["actions"] < run["endpoints"] or run["full_reconcile_actions"] != 0:
            problems.append(
                f"kernel {run['endpoints']}: programmed {run['actions']} actions, "
                f"then {run['full_reconcile_actions']} more"
            )
    if "scale" in results and not results["scale"]["change_to_every_gateway_s"].get("n"):
        problems.append("scale: no change reached the gateways")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="the smoke profile: one short repetition of each, small scale"
    )
    parser.add_argument("--only", default="", help=f"comma-separated sections to run (of {', '.join(SECTIONS)})")
    parser.add_argument("--out", type=Path, help="results directory (default bench/results/<profile>)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="read the raw results already in the results directory instead of measuring again "
        "(to re-render, or to finish a run that stopped part-way)",
    )
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite the tables in docs/benchmarks.md (default: full profile only)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces): run it with sudo")
    profile = QUICK if args.quick else FULL
    sections = [s for s in args.only.split(",") if s] or list(profile.sections)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    for tool in ("iperf3", "ping", "nft"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is missing: run scripts/setup.sh first")
    out = args.out or BENCH / "results" / profile.name
    out.mkdir(parents=True, exist_ok=True)
    note = ""
    if args.reuse:
        REUSE.update(out / name for name in ("dataplane.jsonl", "convergence.json", "kernel.json", "scale.json"))
        note = " (raw results reused where present)"
    results: dict[str, Any] = {
        "profile": profile.name,
        "machine": machine(),
        "command": " ".join(["bench/run.py", *sys.argv[1:]]) + note,
    }
    earlier = out / "bench.json"
    if args.only and earlier.exists():
        # re-running some sections keeps the others' results (and says so in the command line)
        previous = json.loads(earlier.read_text())
        if previous.get("profile") == profile.name:
            kept = [name for name in SECTIONS if name in previous and name not in sections]
            results.update({name: previous[name] for name in kept})
            if kept:
                results["command"] += f" (kept from {previous['machine']['date']}: {', '.join(kept)})"
    for number, name in enumerate(sections, 1):
        say(f"[{number}/{len(sections)}] {name} ...")
        t0 = time.monotonic()
        results[name] = SECTIONS[name](profile, out)
        results[name]["wall_s"] = round(time.monotonic() - t0, 1)
        say(f"[{number}/{len(sections)}] {name} done in {results[name]['wall_s']:.0f}s")
    results["wall_s"] = round(sum(results[name].get("wall_s", 0) for name in SECTIONS if name in results), 1)
    results["missing"] = missing_numbers(results)
    (out / "bench.json").write_text(json.dumps(results, indent=1))
    tables = render_tables(results)
    (out / "tables.md").write_text(tables)
    print(tables)
    if args.docs or (args.docs is None and profile is FULL and all(name in results for name in SECTIONS)):
        replace_generated(ROOT / "docs" / "benchmarks.md", tables)
        (ROOT / "docs" / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
        say("docs/benchmarks.md: tables updated; docs/benchmarks.json: the results, raw rows included")
    say(f"results in {out} ({results['wall_s']:.0f}s)")
    for problem in results["missing"]:
        say(f"MISSING {problem}")
    return 1 if results["missing"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
