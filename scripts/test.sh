#!/usr/bin/env bash
# The whole test suite: ruff, mypy (strict, configured in pyproject.toml), pytest.
# Arguments go to pytest, e.g. `scripts/test.sh tests/unit -k spec`; when they
# select no test (pytest exit 5) that is a failure, unlike for the full suite.
# Expects .venv from scripts/setup.sh (`make test` runs both).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ -x .venv/bin/python ] || { echo "[test] .venv missing: run scripts/setup.sh first" >&2; exit 1; }

lint_paths=()
for p in geoha app tests bench; do
    [ -e "$p" ] && lint_paths+=("$p")
done
echo "[test] ruff check ${lint_paths[*]}"
.venv/bin/ruff check "${lint_paths[@]}"

# The Makefile passes its TYPED list (only paths that exist); default: geoha.
read -r -a typed <<<"${TYPED:-geoha app/api}"
echo "[test] mypy ${typed[*]}"
.venv/bin/mypy "${typed[@]}"

if [ "$#" -eq 0 ] && [ -f app/web/package.json ]; then
    echo "[test] web app: type check and unit tests"
    (cd app/web && npm run --silent lint && npm test --silent)
fi

echo "[test] pytest $*"
rc=0
.venv/bin/python -m pytest -q "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    # Only the full suite may collect nothing; a path or -k that selects no test
    # is a mistake (a mistyped one would otherwise pass without running anything).
    if [ "$#" -eq 0 ]; then
        echo "[test] no tests collected (pytest exit 5), treated as success for the full suite"
        exit 0
    fi
    echo "[test] FAILED: no tests collected for: $* (pytest exit 5)" >&2
    exit 5
fi
exit "$rc"
