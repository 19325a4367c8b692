#!/usr/bin/env bash
# The two entry points of README.md: `lab` (run JupyterLab with the quickstart) and
# `test` (run every check). Both create/update the local virtual environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SCI_EXT_VENV:-.venv}"
PY="$(command -v python3.11 || command -v python3)"

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    # Reinstall only when the dependency list changed (fast repeated runs).
    local stamp="$VENV/.sci_ext-installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e ".[test,lab,redis,keyring,bench]"
        touch "$stamp"
    fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
    lab)
        setup
        if [ "${1:-}" = "--headless" ]; then
            # Run the quickstart top to bottom without a browser and print its outputs.
            exec "$VENV/bin/python" scripts/run_notebook.py notebooks/01_quickstart.ipynb
        fi
        root_flag=""
        [ "$(id -u)" -eq 0 ] && root_flag="--allow-root"  # containers often run as root
        exec "$VENV/bin/jupyter" lab notebooks/01_quickstart.ipynb $root_flag "$@"
        ;;
    test)
        setup
        if ! command -v redis-server >/dev/null; then
            echo "warning: redis-server not found; Redis tests will fail (apt-get install redis-server)" >&2
        fi
        "$VENV/bin/ruff" check sci_ext tests benchmarks scripts
        "$VENV/bin/ruff" format --check sci_ext tests benchmarks scripts
        "$VENV/bin/mypy"
        "$VENV/bin/bandit" -q -c pyproject.toml -r sci_ext
        # -p no:cacheprovider keeps the tree clean; nbval runs every notebook as a test.
        "$VENV/bin/python" -m pytest -p no:cacheprovider --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
            --cov=sci_ext --cov-report=term "$@" tests notebooks
        ;;
    *)
        echo "usage: scripts/dev.sh lab [--headless] | test [pytest args]" >&2
        exit 2
        ;;
esac
