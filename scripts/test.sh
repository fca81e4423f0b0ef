#!/usr/bin/env bash
# The whole test suite: unit, kernel (namespaces), lab, and everything else under tests/.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -q
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
if [[ $# -eq 0 ]]; then set -- -q; fi
.venv/bin/pytest -p no:cacheprovider "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $rc
