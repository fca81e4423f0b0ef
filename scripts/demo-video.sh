#!/usr/bin/env bash
# make demo-video: the burst story recorded without a person, into docs/demo/:
#   burst.cast / burst.svg   the terminal (scripts/burst-demo.sh under asciinema, rendered by svg-term)
#   burst-dashboard.gif      the dashboard's Burst tab meanwhile (Playwright's video, through ffmpeg)
# Installs what it needs: asciinema and ffmpeg from Debian, svg-term-cli from npm (into .cache/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "demo-video: run as root (it builds network namespaces): sudo $0" >&2
  exit 2
fi
[[ -x .venv/bin/cloudgw ]] || bash scripts/setup.sh
if ! command -v asciinema >/dev/null || ! command -v ffmpeg >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends asciinema ffmpeg >/dev/null
fi
tools=.cache/demo-tools
[[ -x $tools/node_modules/.bin/svg-term ]] || npm install --silent --prefix "$tools" svg-term-cli >/dev/null
# Playwright records video with an ffmpeg of its own, which it cannot download offline: Debian's
# serves (the revision is in Playwright's browsers.json)
revision=$(.venv/bin/python - <<'PY'
import json, pathlib, playwright
browsers = json.loads((pathlib.Path(playwright.__file__).parent / "driver/package/browsers.json").read_text())
print(next(b["revision"] for b in browsers["browsers"] if b["name"] == "ffmpeg"))
PY
)
cache=${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}/ffmpeg-$revision
mkdir -p "$cache" && ln -sf "$(command -v ffmpeg)" "$cache/ffmpeg-linux"
mkdir -p docs/demo
echo "demo-video: recording the terminal (about a minute)"
asciinema rec -q --overwrite -c "bash scripts/burst-demo.sh" docs/demo/burst.cast </dev/null >/dev/null
"$tools/node_modules/.bin/svg-term" --in docs/demo/burst.cast --out docs/demo/burst.svg --window --width 100 --height 32
echo "demo-video: recording the dashboard (about a minute)"
.venv/bin/python scripts/demo_video.py docs/demo
ls -la docs/demo
