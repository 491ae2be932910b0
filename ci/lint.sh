#!/usr/bin/env bash
# Format check, lint and strict typing in one place (tools pinned in pyproject's dev extra).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check -q harness tests bench probe_app
.venv/bin/ruff check -q .
.venv/bin/mypy
