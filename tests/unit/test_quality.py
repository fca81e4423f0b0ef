"""The quality gates run with the suite: lint, format, and mypy --strict on the pure core."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint():
    result = run(str(BIN / "ruff"), "check", "src", "tests", "bench", "scripts")
    assert result.returncode == 0, result.stdout


def test_ruff_format():
    result = run(str(BIN / "ruff"), "format", "--check", "src", "tests", "bench", "scripts")
    assert result.returncode == 0, result.stdout


def test_mypy_strict_on_the_pure_core():
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout
