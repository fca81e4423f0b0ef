# Shortcuts; each target is a script under scripts/ so the README's commands work without make.
.PHONY: setup demo burst-demo demo-video test lint down bench bench-quick soak

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

burst-demo:
	bash scripts/burst-demo.sh

demo-video:
	bash scripts/demo-video.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check src tests && .venv/bin/ruff format --check src tests && .venv/bin/mypy

down:
	.venv/bin/cloudgw lab down

# The benchmark: data plane side by side with the peers, convergence, kernel, controller scale;
# writes bench/results/full/ and the tables of docs/benchmarks.md (about 30 minutes).
bench: setup
	.venv/bin/python bench/run.py

# The same, small and short (under 3 minutes); CI runs it as a smoke test.
bench-quick: setup
	.venv/bin/python bench/run.py --quick

# An hour of churn on the three-sites lab, sampled: docs/soak/ (CSV, plot, report). MINUTES=5 for less.
MINUTES ?= 60
soak: setup
	.venv/bin/pip install -q -e '.[bench]'
	.venv/bin/python bench/soak.py --minutes $(MINUTES) --out docs/soak
