"""Regression tests for bugs found by using sci_ext as a researcher would (QA pass).

Each test names the bug it guards against; kernel behaviour is tested in a real kernel.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]


# -- decorated notebook functions as %%cached inputs ---------------------------------------


def test_editing_an_lru_cached_helper_changes_its_hash():
    """Bug: functools.cache/lru_cache wrappers were hashed by pickle, i.e. by name only."""
    from sci_ext.core.cache.keys import hash_value

    def make(offset: int):  # two helpers with the same name and different code
        if offset == 1:

            def helper(x):
                return x + 1

        else:

            def helper(x):
                return x + 100

        return helper

    one, other = make(1), make(100)
    assert hash_value(functools.lru_cache(one)) != hash_value(functools.lru_cache(other))
    assert hash_value(functools.cache(one)) == hash_value(functools.cache(one))
    assert hash_value(functools.partial(one, 1)) != hash_value(functools.partial(other, 1))
    assert hash_value(functools.partial(one, 1)) != hash_value(functools.partial(one, 2))


def test_cache_result_and_retry_wrappers_hash_by_the_wrapped_code():
    """Bug: a cache_result-decorated helper made %%cached give up ('_Layers cannot be pickled')."""
    from sci_ext.core import cache_result, retry_with_backoff
    from sci_ext.core.cache.keys import hash_value

    def embed(text):
        return text * 2

    def embed_v2(text):
        return text * 3

    embed_v2.__qualname__ = embed.__qualname__
    first = cache_result(ttl_seconds=60, backend="memory")(embed)
    assert hash_value(first) == hash_value(cache_result(ttl_seconds=60, backend="memory")(embed))
    assert hash_value(first) != hash_value(cache_result(ttl_seconds=60, backend="memory")(embed_v2))
    first("ab")  # the wrapper's own state (memo, counters) is not part of the key
    assert hash_value(first) == hash_value(cache_result(ttl_seconds=60, backend="memory")(embed))
    retried = retry_with_backoff(max_attempts=3)(embed)
    assert hash_value(retried) != hash_value(retry_with_backoff(max_attempts=3)(embed_v2))


def test_decorated_helpers_in_a_kernel_never_give_a_stale_hit(kernel):
    kernel.run("import functools\n@functools.lru_cache\ndef f(x):\n    return x + 1").check()
    assert kernel.run("%%cached lc\ny = f(1)\nprint(y)").check().stdout == "2\n"
    kernel.run("@functools.lru_cache\ndef f(x):\n    return x + 100").check()
    again = kernel.run("%%cached lc\ny = f(1)\nprint(y)").check()
    assert again.stdout == "101\n", again.text
    assert "[sci_ext] 'lc' ran: input f changed since the stored run" in again.stderr  # issue 25: says why
    kernel.run(
        "from sci_ext.core import cache_result\n@cache_result(ttl_seconds=60)\ndef emb(q):\n    return q * 2"
    ).check()
    first = kernel.run("%%cached ce\nv = emb('ab')\nprint(v)").check()
    assert first.stdout == "abab\n" and "not cached" not in first.stderr, first.text
    hit = kernel.run("%%cached ce\nv = emb('ab')\nprint(v)").check()
    assert "restored from" in hit.stdout, hit.text


# -- %%cached runs its cell as a plain cell would ------------------------------------------


def test_cached_cell_hides_the_last_value_exactly_like_a_plain_cell(kernel):
    """Bug: a ';' inside a trailing comment hid the value, a ';' before a comment showed it."""
    kernel.run("x = 3").check()
    assert kernel.run("%%cached c2\nx;  # comment").check().result is None
    shown = kernel.run("%%cached c3\nx  # done;").check()
    assert shown.result is not None and shown.result["text/plain"] == "3"
    assert kernel.run("%%cached c4\nx;").check().result is None


def test_top_level_await_in_a_cached_cell_is_a_one_line_usage_error(kernel):
    """Bug: a SyntaxError with sci_ext's own frames; the kernel must also keep working."""
    kernel.run("import asyncio\nasync def fetch(x):\n    return x * 2").check()
    res = kernel.run("%%cached aw\nr = await fetch(2)\nr")
    assert res.error is not None and res.error["ename"] == "UsageError", res.text
    assert "%%cached cannot run top-level await" in res.stderr and "Traceback" not in res.text
    assert kernel.run("r = await fetch(3)\nr").check().result["text/plain"] == "6"


# -- jupyter sci config set -----------------------------------------------------------------


def test_config_set_reports_the_value_written_and_what_still_wins(sci_env):
    """Bug: `config set K=7 --user` under a project file printed the project's 5.0 as the user file's value."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    def sci(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        return subprocess.run(
            [sys.executable, "-m", "sci_ext", *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert sci("config", "set", "cache.ttl_seconds=5", "--project").returncode == 0
    res = sci("config", "set", "cache.ttl_seconds=7", "--user")
    assert res.returncode == 0, res.stderr
    user = sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    assert res.stdout.startswith(f"cache.ttl_seconds = 7.0  ({user})"), res.stdout
    assert "in effect: 5.0 from project" in res.stdout and res.stdout.count("\n") == 1
    plain = sci("config", "set", "rag.top_k=8")
    assert plain.stdout == f"rag.top_k = 8  ({user})\n"


def test_files_given_twice_watches_both(kernel, sci_env):
    """Bug: `--files a --files b` kept only b, so editing a gave a stale hit."""
    first, second = sci_env["project"] / "a.txt", sci_env["project"] / "b.txt"
    first.write_text("1")
    second.write_text("2")
    cell = "%%cached two --files a.txt --files b.txt\ntotal = int(open('a.txt').read()) + int(open('b.txt').read())"
    kernel.run(cell).check()
    assert "restored from" in kernel.run(cell).check().stdout
    first.write_text("10")
    changed = kernel.run(cell).check()
    assert "restored from" not in changed.stdout, changed.text
    assert kernel.run("total").check().result["text/plain"] == "12"
    from sci_ext.kernel.cache_magics import parse_cached_line

    assert parse_cached_line("--files a.txt --files b.txt c.txt").files == ["a.txt", "b.txt", "c.txt"]


def test_name_options_given_twice_add_up():
    """Bug: `--inputs a --inputs b` keyed on b only, so a change of a was a stale hit."""
    from sci_ext.kernel.cache_magics import parse_cached_line

    opts = parse_cached_line("n --inputs a --inputs b,c --ignore x --ignore y --outputs p --outputs q")
    assert (opts.inputs, opts.ignore, opts.outputs) == (["a", "b", "c"], ["x", "y"], ["p", "q"])
    assert parse_cached_line("n").inputs is None and parse_cached_line("n").ignore == []


def test_inputs_given_twice_key_on_both_in_a_kernel(kernel):
    kernel.run("a, b = 1, 2").check()
    cell = "%%cached s --inputs a --inputs b\ns = a + b"
    kernel.run(cell).check()
    kernel.run("a = 10").check()
    assert "restored from" not in kernel.run(cell).check().stdout
    assert kernel.run("s").check().result["text/plain"] == "12"


# -- numeric options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%guarded --wait-initial nan\npass", "--wait-initial must be >= 0, got nan"),
        ("%%guarded --wait-max nan\npass", "--wait-max must be >= 0, got nan"),
        ("%%guarded --timeout nan\npass", "--timeout must be >= 0, got nan"),
        ("%%cached n --ttl nan\nq = 1", "--ttl must be >= 0, got nan"),
    ],
)
def test_nan_option_values_are_one_line_usage_errors(kernel, cell, message):
    """Bug: NaN passed the `< 0` checks: a ValueError traceback from sci_ext (guarded), a silent entry (cached)."""
    res = kernel.run(cell)
    assert res.error is not None and res.error["ename"] == "UsageError", res.text
    assert message in res.stderr and "Traceback" not in res.text
    assert kernel.run("print('alive')").check().stdout == "alive\n"


def test_a_failing_cached_cell_shows_its_own_frames_not_sci_ext_internals(kernel):
    """Bug: every error in a %%cached cell came with three frames of cached_cell.py."""
    res = kernel.run("%%cached\ndef f():\n    return 1/0\nf()")
    assert res.error is not None and res.error["ename"] == "ZeroDivisionError"
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(res.error["traceback"]))  # without colours
    assert "cached_cell.py" not in traceback and "cache_magics.py" not in traceback, traceback
    assert "return 1/0" in traceback
    assert kernel.run("%%cached\nmissing_name").error["ename"] == "NameError"


# -- quoting in magic lines --------------------------------------------------------------------


def test_quoted_values_with_spaces_in_sci_config(kernel):
    """Bug: quotes were kept as text, so no value with a space (a path, a name) could be set."""
    res = kernel.run('%sci_config core.environment="my laptop"').check()
    assert res.stdout == "core.environment = 'my laptop'  (runtime)\n"
    bad = kernel.run("%sci_config core.environment=Bob's laptop")
    assert bad.error is not None and bad.error["ename"] == "UsageError"
    assert "No closing quotation" in bad.stderr and "Traceback" not in bad.text


def test_quoted_files_glob_with_a_space_is_watched(kernel, sci_env):
    """Bug: --files "my data/*.csv" looked for '"my' and 'data/*.csv"', matched nothing: stale hits."""
    folder = sci_env["project"] / "my data"
    folder.mkdir()
    (folder / "a.csv").write_text("1,2")
    cell = '%%cached sp --files "my data/*.csv"\nn = len(open("my data/a.csv").read().split(","))'
    kernel.run(cell).check()
    assert "restored from" in kernel.run(cell).check().stdout
    (folder / "a.csv").write_text("1,2,3")
    assert "restored from" not in kernel.run(cell).check().stdout
    assert kernel.run("n").check().result["text/plain"] == "3"


# -- %sci_secret ---------------------------------------------------------------------------------


def test_export_all_from_an_empty_vault_says_the_vault_is_empty(fast_vault, kernel):
    """Bug: `%sci_secret export --all` answered 'give secret names or all=True' to a user who gave --all."""
    res = kernel.run("%sci_secret export --all")
    assert res.error is not None and res.error["ename"] == "UsageError"
    assert "holds no secrets" in res.stderr and "all=True" not in res.stderr, res.stderr


# -- %%guarded ----------------------------------------------------------------------------------


def test_a_failing_fallback_shows_its_own_source(kernel):
    """Bug: the traceback of a failing --fallback read 'Could not get source ...' instead of the statement."""
    res = kernel.run(
        "%%guarded --retries 0 --fallback ratio = 1 / len(_sci_error.args[1:])\nraise ConnectionError('down')"
    )
    assert res.error is not None and res.error["ename"] == "ZeroDivisionError"
    # Colours stripped: the highlighted source splits the statement ("[1:]" is coloured).
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(res.error["traceback"]))
    assert "Could not get source" not in traceback and "len(_sci_error.args[1:])" in traceback, traceback
    # The fallback's own frame shows the statement, not only the %%guarded line that names it.
    assert re.search(r"^-*> 1 ratio = 1 / len\(_sci_error\.args\[1:\]\)$", traceback, re.M), traceback


# -- an unusable cache directory ----------------------------------------------------------------


def test_an_unusable_cache_dir_runs_the_cell_uncached_with_one_warning(kernel, sci_env):
    """Bug: cache.dir pointing at a file (or a dir one cannot create) crashed %%cached before the cell ran."""
    blocker = sci_env["project"] / "not-a-dir"
    blocker.write_text("x")
    kernel.run(f"%sci_config cache.dir={blocker}").check()
    res = kernel.run("%%cached f\nq = 41 + 1\nprint('ran', q)").check()
    assert res.stdout == "ran 42\n"
    assert res.stderr.startswith("sci_ext warning: not cached: the cache cannot be opened (")
    assert f"{blocker} is not a directory. Fix:" in res.stderr
    assert res.stderr.count("\n") == 1
    for line in ("%sci_cache list", "%sci_cache stats"):
        admin = kernel.run(line)
        assert admin.error is not None and admin.error["ename"] == "UsageError", admin.text
        assert "the cache cannot be opened" in admin.stderr and "Traceback" not in admin.text


@pytest.mark.parametrize(
    ("variable", "value", "args"),
    [
        ("SCI_EXT_CACHE__DIR", "{blocker}", ("cache", "list")),
        ("SCI_EXT_CACHE__DIR", "{blocker}", ("cache", "clear", "--all")),
        ("SCI_EXT_SECURITY__VAULT_PATH", "{blocker}/vault.json", ("secret", "list")),
    ],
)
def test_cli_reports_an_unusable_path_in_one_line(sci_env, variable, value, args):
    """Bug: a cache dir or vault path that is not a directory gave a Python traceback, exit 1."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocker = sci_env["project"] / "not-a-dir"
    blocker.write_text("x")
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        variable: value.format(blocker=blocker),
    }
    res = subprocess.run([sys.executable, "-m", "sci_ext", *args], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 1, res.stderr
    assert res.stderr.startswith("jupyter sci: ") and res.stderr.count("\n") == 1, res.stderr
    assert "[Errno" in res.stderr or "is not a directory. Fix:" in res.stderr, res.stderr
    assert str(blocker) in res.stderr


@pytest.mark.parametrize(("option", "line"), [("--breaker", "--breaker svc"), ("--rate", "--rate 5/second")])
def test_guarded_with_an_unusable_state_dir_is_a_one_line_usage_error(kernel, sci_env, option, line):
    """Bug: core.state_dir pointing at a file gave a NotADirectoryError traceback from sci_ext's stores."""
    blocker = sci_env["project"] / "not-a-dir"
    blocker.write_text("x")
    kernel.run(f"%sci_config core.state_dir={blocker}").check()
    res = kernel.run(f"%%guarded {line}\nprint('ran')")
    assert res.error is not None and res.error["ename"] == "UsageError", res.text
    assert res.stderr.startswith(f"UsageError: {option}: shared state unusable (")
    assert f"{blocker} is not a directory. Fix:" in res.stderr and res.stderr.count("\n") == 1
    assert "core.state_dir" in res.stderr and "Traceback" not in res.text
    assert kernel.run("%%guarded\nprint('plain guarded still runs')").check().stdout == "plain guarded still runs\n"


# -- saving config files ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "sci_ext", *args], capture_output=True, text=True, env=env, timeout=60)


def test_saving_keeps_a_private_config_file_private(sci_env):
    """Bug: `config set` / `%sci_config --save` rewrote a 0600 user file (with a signing key) as 0644."""
    user = sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('schema_version = 2\n\n[cache]\nredis_signing_key = "shared-signing-secret"\n')
    user.chmod(0o600)
    res = _cli("config", "set", "rag.top_k=3")
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(user.stat().st_mode) == 0o600
    assert "top_k = 3" in user.read_text() and "shared-signing-secret" in user.read_text()
    fresh = sci_env["project"] / "sci_ext.toml"
    assert _cli("config", "set", "rag.top_k=4", "--project").returncode == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # a new file: the usual mode


def test_saving_through_a_symlinked_config_updates_its_target(sci_env, tmp_path):
    """Bug: a config.toml symlinked from a dotfiles checkout was replaced by a copy; the checkout went stale."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "sci_ext.toml"
    target.write_text("schema_version = 2\n\n[rag]\n# tuned by hand\ntop_k = 2\n")
    user = sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    user.parent.mkdir(parents=True)
    user.symlink_to(target)
    res = _cli("config", "set", "rag.top_k=7")
    assert res.returncode == 0, res.stderr
    assert user.is_symlink() and user.resolve() == target
    assert "top_k = 7" in target.read_text() and "# tuned by hand" in target.read_text()


# -- the README's and docs' magic lines, as written (trailing comments included) -------------------------


README_LINES = [
    "%sci_config rag                          # every rag setting: value, type, source",
    "%sci_config rag.top_k=8 retry.max_attempts=5",
    "%sci_config --save project               # into ./sci_ext.toml, comments kept",
    "%sci_secret list                     # names, created, updated, last used; never values",
    "%sci_secret lock                     # forget the key until the next use",
]


def test_readme_magic_lines_with_trailing_comments_run_as_written(fast_vault, kernel):
    """Bug: IPython passes the comment to the magic: `%sci_config rag  # ...` was a UsageError."""
    repo = Path(__file__).resolve().parents[2]
    docs = "\n".join(p.read_text() for p in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))])
    for line in README_LINES:
        assert line in docs, line
        kernel.run(line).check()
    assert "8" in kernel.run("%sci_config rag.top_k   # how many chunks").check().text
    assert kernel.run("%sci_config core.environment=lab  # where").check().stdout.startswith("core.environment = 'lab'")
    assert kernel.run("%sci_cache list   # all entries").check().displays
    kernel.run("%%guarded ask --retries 0   # no retries\nok = 1").check()
    cell = kernel.run("%%cached sim --files data/*.csv   # my simulation\nsamples = 3").check()
    assert "not cached" not in cell.stderr
    from sci_ext.kernel.cache_magics import parse_cached_line
    from sci_ext.kernel.lines import strip_comment

    assert parse_cached_line("sim --files data/*.csv   # my simulation").files == ["data/*.csv"]
    assert strip_comment("cache.redis_url=redis://:pa#ss@host  # note") == "cache.redis_url=redis://:pa#ss@host"
    assert strip_comment("--fallback reply = '# none'") == "--fallback reply = '# none'"


# -- %unload_ext ---------------------------------------------------------------------------------


def test_unload_removes_the_magics_and_load_brings_them_back(kernel):
    """Bug: after %unload_ext, %%cached and friends still ran (without redaction or hooks)."""
    kernel.run("%unload_ext sci_ext").check()
    gone = kernel.run("%%cached\nx = 1")
    assert gone.error is not None and "not found" in gone.stderr, gone.text
    assert kernel.run("%sci_config").error is not None
    counts = "{k: len(v) for k, v in get_ipython().events.callbacks.items() if v}"
    bare = kernel.run(counts).check().result["text/plain"]
    kernel.run("%load_ext sci_ext").check()
    kernel.run("%reload_ext sci_ext").check()
    assert "restored" not in kernel.run("%%cached back\ny = 2").check().stdout
    assert "restored" in kernel.run("%%cached back\ny = 2").check().stdout
    kernel.run("%unload_ext sci_ext").check()
    assert kernel.run(counts).check().result["text/plain"] == bare


# -- %%guarded --rate ------------------------------------------------------------------------------


def test_changing_the_rate_of_a_named_bucket_takes_effect():
    """Bug: after `--rate 1/hour`, fixing it to `--rate 100/second` still waited about an hour."""
    from sci_ext.core.errors import RateLimitExceeded
    from sci_ext.core.resilience import RateLimiter

    slow = RateLimiter("qa-rate-change", "1/hour", store="memory")
    slow.acquire(block=False)
    with pytest.raises(RateLimitExceeded):
        slow.acquire(block=False)  # the next slot is an hour away at this rate
    fast = RateLimiter("qa-rate-change", "100/second", store=slow.store)
    assert fast.acquire(timeout=1.0) <= 0.05  # one call owed, spaced at the new rate


def test_guarded_rate_fixed_in_the_next_cell_does_not_wait_for_the_old_rate(kernel):
    kernel.run("%%guarded ask --rate 1/hour\nprint('first')").check()
    fixed = kernel.run("%%guarded ask --rate 100/second\nprint('second')", timeout=30).check()
    assert fixed.stdout == "second\n"


# -- the result of a cached cell -------------------------------------------------------------------


def test_a_hit_gives_out_and_underscore_the_value_not_a_display_wrapper(kernel):
    """Bug: after a hit, `_ + 1` raised TypeError: `_` was a '_ReplayedResult', not 45."""
    kernel.run("%%cached s\nsum(range(10))").check()
    hit = kernel.run("%%cached s\nsum(range(10))").check()
    assert "restored from" in hit.stdout and hit.result["text/plain"] == "45"
    assert kernel.run("_ + 1").check().result["text/plain"] == "46"
    kernel.run("import threading\nlock = threading.Lock()").check()
    kernel.run("%%cached lk --ignore lock\nlock").check()  # a result that cannot be pickled: display only
    again = kernel.run("%%cached lk --ignore lock\nlock").check()
    assert "restored from" in again.stdout and "lock" in again.result["text/plain"]


def test_a_result_holding_a_secret_is_stored_as_its_redacted_display_only(fast_vault, kernel):
    from sci_ext.core.security import get_security_manager

    secret = "sk-qa-0123456789abcdef"
    get_security_manager().set_secret("QA_KEY", secret)
    kernel.run("%sci_secret export QA_KEY").check()
    cell = "%%cached sk\nimport os\nos.environ['QA_KEY']"
    assert kernel.run(cell).check().result["text/plain"] == "'[REDACTED:QA_KEY]'"
    hit = kernel.run(cell).check()
    assert "restored from" in hit.stdout and hit.result["text/plain"] == "'[REDACTED:QA_KEY]'"
    for path in (fast_vault["XDG_CACHE_HOME"]).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


# -- config values that are secrets ----------------------------------------------------------------


def test_sci_config_never_echoes_a_signing_key_or_a_url_password(kernel):
    """Bug: `%sci_config cache.redis_signing_key=...` echoed the key into the notebook; URL passwords showed."""
    res = kernel.run(
        "%sci_config cache.redis_signing_key=supersecretsigningkey cache.redis_url=redis://:hunter2pass@localhost:6379/0"
    ).check()
    assert "cache.redis_signing_key = '[hidden]'  (runtime)" in res.stdout
    assert "cache.redis_url = 'redis://:***@localhost:6379/0'  (runtime)" in res.stdout
    table = kernel.run("%sci_config cache").check()
    shown = res.text + table.text + table.displays[0]["text/html"]
    assert "supersecretsigningkey" not in shown and "hunter2pass" not in shown
    assert kernel.run("%sci_config --reset").check().stdout == "reset all runtime overrides\n"


def test_cli_config_set_and_show_hide_the_signing_key_and_url_password(sci_env):
    res = _cli(
        "config", "set", "cache.redis_signing_key=supersecretsigningkey", "cache.redis_url=redis://u:pw1234@h:1/0"
    )
    assert res.returncode == 0, res.stderr
    shown = _cli("config", "show", "cache")
    for out in (res.stdout, shown.stdout, _cli("config", "show", "--json").stdout):
        assert "supersecretsigningkey" not in out and "pw1234" not in out, out
    assert "redis://u:***@h:1/0" in shown.stdout
    assert _cli("config", "get", "cache.redis_url").stdout.strip() == "redis://u:pw1234@h:1/0"  # for scripts


# -- cells reading the environment ----------------------------------------------------------------


def test_a_cell_reading_one_variable_survives_a_restart_with_other_variables_changed(kernel_factory):
    """Bug: the whole environment was keyed: JPY_PARENT_PID, SSH_CONNECTION (new per session) made restarts miss."""
    cell = "%%cached envcell\nimport os\ndata_dir = os.getenv('QA_DATA_DIR', 'none')\nprint(data_dir)"
    first = kernel_factory(env={"SSH_CONNECTION": "10.0.0.5 51234 10.0.0.1 22", "QA_DATA_DIR": "/data/a"})
    assert first.run(cell).check().stdout == "/data/a\n"
    second = kernel_factory(env={"SSH_CONNECTION": "10.0.0.5 52345 10.0.0.1 22", "QA_DATA_DIR": "/data/a"})
    again = second.run(cell).check()
    assert "restored from" in again.stdout, again.text
    third = kernel_factory(env={"SSH_CONNECTION": "10.0.0.5 52345 10.0.0.1 22", "QA_DATA_DIR": "/data/b"})
    changed = third.run(cell).check()
    assert changed.stdout == "/data/b\n", changed.text  # the variable it reads still keys it
    assert "'envcell' ran: environment variable QA_DATA_DIR changed" in changed.stderr  # and the miss says so


def test_only_literal_environment_reads_narrow_the_key():
    from sci_ext.kernel.cellcache.analysis import analyze

    assert analyze("import os\nh = os.environ['A'] + os.getenv('B', '')").environment_names == ("A", "B")
    assert analyze("import os\nok = 'X' in os.environ and os.environ.get('Y')").environment_names == ("X", "Y")
    assert analyze("import os\nname = 'A'\nh = os.environ[name]").environment_names is None
    assert analyze("import os\nsnapshot = dict(os.environ)").environment_names is None


# -- objects holding sets as %%cached inputs -------------------------------------------------------

SET_HOLDERS = """
from dataclasses import dataclass
@dataclass
class Settings:
    labels: frozenset = frozenset({"cat", "dog", "eel", "fox"})
    n: int = 3
class Run:
    def __init__(self):
        self.tags = {"baseline", "ablation", "seed-1", "seed-2"}
settings, run = Settings(), Run()
"""


def test_objects_with_set_attributes_hash_the_same_in_every_kernel(kernel_factory):
    """Bug: objects were hashed by pickle, whose set order follows the hash seed: every restart was a miss."""
    cell = "%%cached sets\nsummary = (sorted(settings.labels), settings.n, sorted(run.tags))"
    first = kernel_factory(env={"PYTHONHASHSEED": "1"})
    first.run(SET_HOLDERS).check()
    first.run(cell).check()
    second = kernel_factory(env={"PYTHONHASHSEED": "2"})
    second.run(SET_HOLDERS).check()
    again = second.run(cell).check()
    assert "restored from" in again.stdout, again.text
    second.run("run.tags.add('new')").check()
    assert "restored from" not in second.run(cell).check().stdout  # content still keys it
