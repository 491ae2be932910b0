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
# a broken link, anchor or repository path fails (mkdocs.yml); its log only then. Neither -q nor -v: with either,
# mkdocs 1.6 lets warnings pass under --strict (mkdocs/mkdocs#4126, #3991)
out=$(.venv/bin/mkdocs build --strict --site-dir "$site" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
