"""The burst demo, recorded without a person (make demo-video): the dashboard's Burst tab as a video
(Playwright with Debian's ffmpeg, turned into a GIF) while the story runs in a lab. The terminal half
is recorded by scripts/demo-video.sh with asciinema. Run as root from the repository."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cloudgw.lab import controlplane  # noqa: E402
from cloudgw.lab.runstate import LabPaths  # noqa: E402

LAB = "cgwvideo"
CLOUDGW = str(ROOT / ".venv" / "bin" / "cloudgw")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def cloudgw(*args: str) -> None:
    subprocess.run([CLOUDGW, *args], check=True, capture_output=True, text=True)


def until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo-video: gave up waiting for {what}")
        time.sleep(0.5)  # polling the controller, with a deadline


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "demo")
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    subprocess.run([CLOUDGW, "lab", "down", "--name", LAB], capture_output=True, check=False)
    cloudgw("lab", "up", "--scenario", "burst", "--name", LAB)
    try:
        paths = LabPaths(LAB)
        with controlplane.lab_client(paths) as api:
            api.create(
                "bursts",
                {
                    "name": "web",
                    "network": "lab",
                    "site": "public",
                    "signal": {"kind": "pool", "pool": "private-lab"},
                    "scale_out_above": 0.55,
                    "scale_in_below": 0.45,
                    "max_vms": 2,
                    "step": 2,
                    "warmup": 2,
                    "cooldown": 5,
                    "template": {"image": "lab-vm", "size": "small"},
                },
            )
            token = api.create("tokens", {"name": "video", "role": "readonly"})["token"]
            url = (controlplane.read_cli_config(paths) or {})["url"]

            def vms() -> int:
                return len(api.json("GET", "/api/v1/bursts/web/status")["vms"])

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
                context = browser.new_context(
                    viewport={"width": 1100, "height": 700},
                    ignore_https_errors=True,
                    record_video_dir=str(out / "video"),
                    record_video_size={"width": 1100, "height": 700},
                )
                page = context.new_page()
                page.goto(url + "/")
                page.fill('[data-testid="token"]', token)
                page.click('[data-testid="login-button"]')
                page.wait_for_selector('[data-testid="whoami"]:not(:empty)')
                page.goto(url + "/#burst")
                page.wait_for_selector('[data-testid="burst-reason"]:has-text("holding")')
                page.wait_for_timeout(4000)  # the recording: a few seconds of the calm state
                cloudgw("lab", "vm", "add", "private", "--name", LAB)
                cloudgw("lab", "vm", "add", "private", "--name", LAB)
                until(lambda: vms() == 2, 60, "two burst VMs")
                page.wait_for_timeout(6000)
                cloudgw("lab", "vm", "delete", "private-vm5", "--name", LAB)
                cloudgw("lab", "vm", "delete", "private-vm6", "--name", LAB)
                until(lambda: vms() == 0, 90, "the burst VMs to go")
                page.wait_for_timeout(4000)
                video = page.video.path() if page.video else None
                context.close()
                browser.close()
        if video is None:
            raise SystemExit("demo-video: Playwright recorded no video")
        subprocess.run(
            [
                "ffmpeg",
                "-y",
                "-loglevel",
                "error",
                "-i",
                str(video),
                "-vf",
                "fps=8,scale=880:-1",
                str(out / "burst-dashboard.gif"),
            ],
            check=True,
        )
        Path(video).unlink(missing_ok=True)
        print(out / "burst-dashboard.gif")
    finally:
        subprocess.run([CLOUDGW, "lab", "down", "--name", LAB], capture_output=True, check=False)


if __name__ == "__main__":
    main()
