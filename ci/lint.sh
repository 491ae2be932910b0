#!/usr/bin/env bash
# Format check, lint, strict typing and the strict docs build in one place (tools pinned in pyproject's dependency
# groups, installed by ci/rh).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check -q harness tests bench probe_app
.venv/bin/ruff check -q .
.venv/bin/mypy
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
.venv/bin/mkdocs build --strict -q --site-dir "$site"  # a broken link, anchor or repository path fails (mkdocs.yml)
