# Shortcuts; each target is a script under scripts/ so the README's commands work without make.
.PHONY: setup demo test lint down bench

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check src tests && .venv/bin/ruff format --check src tests && .venv/bin/mypy

down:
	.venv/bin/cloudgw lab down
