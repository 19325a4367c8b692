"""The generation file that lets disk-shared breakers skip SQLite: coherence across processes and damage."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sci_ext.core.errors import CircuitOpenError, TransientError
from sci_ext.core.resilience import OPEN, CircuitBreaker, DiskStore
from sci_ext.core.resilience.generations import MAGIC, RETIRED, SIZE, SLOTS, GenerationFile, slot_of

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the generation file needs fcntl and mmap")


def fail() -> None:
    raise TransientError("down")


@pytest.fixture
def stores(tmp_path):
    """Two stores on one directory, each with its own mapping and copies, as two processes would have."""
    made: list[DiskStore] = []

    def make(**kwargs) -> DiskStore:
        store = DiskStore(tmp_path / "breakers", **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def closed(failures: int = 0) -> dict:
    return {"state": "closed", "failures": failures, "opened_at": 0.0, "trial_id": "", "trial_until": 0.0}


def write_behind_the_counters(directory: Path, key: str, record: dict) -> None:
    """Change the database without bumping any counter (an old version, or a writer that died)."""
    plain = DiskStore(directory, generations=False)
    try:
        plain.update(key, lambda _current: record)
    finally:
        plain.close()


def test_a_reader_keeps_its_copy_until_another_store_writes(stores):
    reader, writer = stores(), stores()
    assert reader.load("api") is None
    writer.update("api", lambda _: closed(1))
    assert reader.load("api") == closed(1)
    assert "api" in reader._seen  # the copy is kept ...
    reader._put("api", closed(7))  # ... and used: a change that bypasses the counters is not seen
    assert reader.load("api") == closed(1)
    writer.update("api", lambda _: closed(2))  # a real write moves the counter: read again
    assert reader.load("api") == closed(2)
    writer.delete("api")
    assert reader.load("api") is None
    assert writer.load("api") is None


_WATCHER = textwrap.dedent(
    """
    import sys
    from sci_ext.core.errors import CircuitOpenError
    from sci_ext.core.resilience import CircuitBreaker
    breaker = CircuitBreaker("watched", fail_max=2, reset_timeout=60, store="disk")
    for line in sys.stdin:
        try:
            breaker.call(lambda: None)
            outcome = "closed"
        except CircuitOpenError:
            outcome = "refused"
        cached = "cached" if "watched" in breaker.store._seen else "uncached"
        print(outcome, cached, flush=True)
    """
)


def test_a_breaker_tripped_in_one_process_refuses_the_next_call_of_a_running_other(sci_env):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    watcher = subprocess.Popen(
        [sys.executable, "-c", _WATCHER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert watcher.stdin is not None and watcher.stdout is not None

        def ask() -> str:
            watcher.stdin.write("call\n")  # type: ignore[union-attr]
            watcher.stdin.flush()  # type: ignore[union-attr]
            return watcher.stdout.readline().strip()  # type: ignore[union-attr]

        assert ask() == "closed cached"
        assert ask() == "closed cached"  # the watcher now answers from its copy
        tripper = CircuitBreaker("watched", fail_max=2, reset_timeout=60, store="disk")
        for _ in range(2):
            with pytest.raises(TransientError):
                tripper.call(fail)
        assert tripper.state == OPEN
        assert ask() == "refused cached"  # its very next call, no waiting
        tripper.reset()
        assert ask() == "closed cached"
    finally:
        if watcher.stdin is not None:
            watcher.stdin.close()
        watcher.wait(timeout=30)
    assert watcher.returncode == 0


def test_a_corrupted_generation_file_falls_back_to_the_store_and_is_repaired(stores, tmp_path):
    reader, writer = stores(), stores()
    writer.update("api", lambda _: closed(1))
    assert reader.load("api") == closed(1)
    path = reader.generations_path
    with open(path, "r+b") as handle:
        handle.write(b"garbage!")  # the magic word
    reader._next_open = time.monotonic() + 3600  # as if it had just tried to re-open it
    write_behind_the_counters(tmp_path / "breakers", "api", closed(5))
    assert reader.load("api") == closed(5)  # the copy is not trusted any more: read from the store
    assert "api" not in reader._seen
    write_behind_the_counters(tmp_path / "breakers", "api", closed(6))
    assert reader.load("api") == closed(6)
    reader._next_open = 0.0
    assert reader.load("api") == closed(6)  # re-opening repairs the file ...
    assert int.from_bytes(path.read_bytes()[:8], sys.byteorder) == MAGIC
    assert "api" in reader._seen  # ... and copies are kept again
    writer.update("api", lambda _: closed(3))
    assert reader.load("api") == closed(3)


def test_a_writer_repairs_a_corrupted_file_too(stores):
    reader, writer = stores(), stores()
    assert reader.load("api") is None
    with open(reader.generations_path, "r+b") as handle:
        handle.write(b"garbage!")
    writer.update("api", lambda _: closed(2))
    assert int.from_bytes(reader.generations_path.read_bytes()[:8], sys.byteorder) == MAGIC
    assert reader.load("api") == closed(2)


def test_a_deleted_generation_file_is_recreated_and_old_mappings_retired(stores):
    reader, writer = stores(), stores()
    writer.update("api", lambda _: closed(1))
    assert reader.load("api") == closed(1)
    old_words = reader._seen["api"][0]
    reader.generations_path.unlink()
    writer.update("api", lambda _: closed(2))  # notices, marks the old mapping retired, makes a new file
    assert reader.generations_path.exists()
    assert old_words[0] == RETIRED
    assert reader.load("api") == closed(2)  # re-opens the new file
    assert reader._seen["api"][0] is not old_words
    assert reader._generations is not None and not reader._generations.replaced()
    writer.update("api", lambda _: closed(5))
    assert reader.load("api") == closed(5)


def test_an_odd_counter_means_a_write_in_progress_and_is_never_trusted(stores, tmp_path):
    reader = stores()
    reader.update("api", lambda _: closed(1))
    generations = reader._generations
    assert generations is not None
    generations.begin(slot_of("api"))  # as if a writer died between its two steps
    write_behind_the_counters(tmp_path / "breakers", "api", closed(2))
    assert reader.load("api") == closed(2)
    write_behind_the_counters(tmp_path / "breakers", "api", closed(3))
    assert reader.load("api") == closed(3) and "api" not in reader._seen
    reader.update("api", lambda _: closed(4))  # the next write makes it even again
    assert not generations.words[slot_of("api")] & 1
    assert reader.load("api") == closed(4) and "api" in reader._seen


def test_an_unusable_generation_file_reads_the_store_every_time(stores, tmp_path, caplog):
    (tmp_path / "breakers").mkdir(mode=0o700)
    (tmp_path / "breakers" / DiskStore.GENERATIONS_FILE).mkdir()  # a directory where the file should be
    with caplog.at_level(logging.WARNING, logger="sci_ext.resilience"):
        reader = stores()
    assert reader._generations is None
    assert "generation file" in caplog.text and "read from the store on every call" in caplog.text
    reader.update("api", lambda _: closed(1))
    write_behind_the_counters(tmp_path / "breakers", "api", closed(2))
    assert reader.load("api") == closed(2)
    breaker = CircuitBreaker("api", fail_max=1, store=reader)
    with pytest.raises(TransientError):
        breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        breaker.call(fail)


def test_a_short_file_is_initialised_under_the_lock_with_random_even_counters(tmp_path):
    path = tmp_path / "generations"
    path.write_bytes(b"\0" * 100)  # a creator that died before giving it its size
    first = GenerationFile.open(path)
    second = GenerationFile.open(path)
    assert first is not None and second is not None
    try:
        assert path.stat().st_size == SIZE and oct(path.stat().st_mode & 0o777) == "0o600"
        assert first.valid and second.valid
        counters = [first.words[slot] for slot in range(1, SLOTS + 1)]
        assert all(value % 2 == 0 for value in counters) and len(set(counters)) > SLOTS // 2
        slot = slot_of("api")
        before = second.words[slot]
        with first.locked():
            first.begin(slot)
            assert second.words[slot] == before + 1  # one shared page
            assert first.end(slot) == before + 2 == second.words[slot]
        assert first.is_current() and not first.replaced()
    finally:
        first.close()
        second.close()


def test_the_state_dir_gets_the_generation_file(sci_env):
    breaker = CircuitBreaker("where", fail_max=1)
    with pytest.raises(TransientError):
        breaker.call(fail)
    path = sci_env["XDG_STATE_HOME"] / "sci_ext" / "breakers" / DiskStore.GENERATIONS_FILE
    assert path.stat().st_size == SIZE and oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_forked_child_opens_its_own_descriptor_without_retiring_the_file(stores):
    reader, writer = stores(), stores()
    writer.update("api", lambda _: closed(1))
    assert reader.load("api") == closed(1)
    inherited = writer._generations
    assert inherited is not None
    inherited._pid = -1  # what os.fork leaves behind: our flock would be shared with the parent
    assert not inherited.is_current() and not inherited.replaced()
    writer.update("api", lambda _: closed(2))
    assert writer._generations is not inherited and inherited.valid  # same file, not retired
    assert reader.load("api") == closed(2)


def test_concurrent_writers_in_two_stores_never_leave_a_reader_behind(stores):
    first, second, reader = stores(), stores(), stores()
    rounds, errors = 40, []

    def bump(store: DiskStore) -> None:
        for _ in range(rounds):
            store.update("count", lambda current: {"n": (current or {"n": 0})["n"] + 1})

    def watch() -> None:
        last = 0
        while last < 4 * rounds:
            value = (reader.load("count") or {"n": 0})["n"]
            if value < last:
                errors.append(f"went back from {last} to {value}")
                return
            last = value

    threads = [threading.Thread(target=bump, args=(store,)) for store in (first, second, first, second)]
    watcher = threading.Thread(target=watch)
    for thread in [watcher, *threads]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    watcher.join(timeout=30)
    assert not watcher.is_alive() and errors == []
    assert reader.load("count") == {"n": 4 * rounds}  # every write seen, none lost
    assert "count" in reader._seen
