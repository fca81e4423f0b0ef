#!/usr/bin/env bash
# Everything cloudgw needs on this machine: Debian packages (as root) and a Python virtualenv in
# .venv with cloudgw and its test dependencies. Idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 ]]; then
  bash scripts/install-system.sh
else
  echo "setup: not root; skipping system packages (the lab and the kernel tests need root)"
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=.venv/.cloudgw-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing Python packages into .venv (about a minute the first time)"
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import cloudgw, fastapi, pyroute2' # fail here if the install failed
  touch "$stamp"
fi

# `cloudgw` on the PATH for the demo's next steps, unless something else already owns that name.
if [[ $(id -u) -eq 0 ]]; then
  link=/usr/local/bin/cloudgw
  if [[ ! -e $link || ( -L $link && $(readlink "$link") == */.venv/bin/cloudgw ) ]]; then
    ln -sf "$PWD/.venv/bin/cloudgw" "$link"
  fi
fi
echo "setup: ready ($(.venv/bin/cloudgw --version))"
