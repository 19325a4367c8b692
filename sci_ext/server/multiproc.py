"""The Prometheus multiprocess directory that kernels write and the server reads.

Kernels launched by the server get ``PROMETHEUS_MULTIPROC_DIR`` (and
``SCI_EXT_KERNEL_ID``) in their launch environment, so ``prometheus_client`` in
the kernel picks the mmap-backed value class when it is first imported there (a
variable set later loses every metric silently).  The server's own process keeps
its in-process registry (jupyter_server registered its metrics there long before
this module runs); :class:`CombinedCollector` serves both in one exposition,
merging families that exist on both sides.

Files of dead processes are handled here too (prometheus client_python issues
#204 and #367): at server start they are removed; while the server runs,
:meth:`MetricsDir.compact` folds dead processes' counters, histograms and
summaries into one ``<type>_archive.db`` per type and deletes their files, so a
scrape reads one file per live kernel plus a fixed few, while the counters of
dead kernels still count.  Gauges of dead processes are dropped (a dead process
has no current value).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_KERNEL_ID",
    "ENV_MULTIPROC_DIR",
    "CombinedCollector",
    "MetricsDir",
    "install_kernel_env",
]

log = logging.getLogger("sci_ext.server")

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
ENV_KERNEL_ID = "SCI_EXT_KERNEL_ID"

#: ``counter_1234.db``, ``gauge_livesum_1234.db``, ``histogram_archive.db``.
_FILE_RE = re.compile(r"^(?P<type>counter|histogram|summary|gauge)_(?:(?P<mode>[a-z]+)_)?(?P<pid>\d+|archive)\.db$")
_ACCUMULATED = ("counter", "histogram", "summary")
_MIN_FILE_BYTES = 8  # the header prometheus_client writes first

#: Labels whose values users choose (breaker, retry, ``%%guarded`` and function names, error
#: types, check names, LLM models and providers).  Each process keeps at most 50 values of
#: each (``telemetry.metrics.LabelLimiter``, ``llm.max_model_labels``); the archive of dead
#: processes would add up every process's values, so it keeps the most used
#: :data:`ARCHIVE_LABEL_VALUES` per metric and label and sums the rest into ``other``
#: (issue 18: label cardinality from user-chosen names stays bounded across restarts).
USER_LABELS = ("name", "error_type", "model", "provider", "check", "function")
ARCHIVE_LABEL_VALUES = 50


def bound_user_labels(totals: dict[str, float], limit: int = ARCHIVE_LABEL_VALUES) -> dict[str, float]:
    """``totals`` (mmap keys -> values) with at most ``limit`` values per metric and user label (rest: ``other``)."""
    import json

    parsed: list[tuple[str, Any]] = []
    weight: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, value in totals.items():
        try:
            metric, name, labels, help_text = json.loads(key)
        except (ValueError, TypeError):
            parsed.append((key, None))
            continue
        parsed.append((key, (metric, name, labels, help_text)))
        for label in USER_LABELS:
            if isinstance(labels, dict) and label in labels and labels[label] != "other":
                weight[(metric, label)][labels[label]] += abs(value)
    keep = {
        slot: set(sorted(values, key=lambda v: (-values[v], v))[:limit])
        for slot, values in weight.items()
        if len(values) > limit
    }
    if not keep:
        return totals
    out: dict[str, float] = defaultdict(float)
    for key, fields in parsed:
        if fields is None:
            out[key] += totals[key]
            continue
        metric, name, labels, help_text = fields
        new = dict(labels)
        for label in USER_LABELS:
            kept = keep.get((metric, label))
            if kept is not None and label in new and new[label] != "other" and new[label] not in kept:
                new[label] = "other"
        out[json.dumps([metric, name, new, help_text], sort_keys=True) if new != labels else key] += totals[key]
    return dict(out)


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class CompactionResult:
    """What one :meth:`MetricsDir.compact` did."""

    dead_pids: list[int] = field(default_factory=list)
    files_merged: int = 0
    files_removed: int = 0


class MetricsDir:
    """The multiprocess directory: preparation, pid bookkeeping, compaction, reading."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        #: Why the directory cannot be used (``None`` when it can).
        self.error: str | None = None
        #: The directory's identity when :meth:`prepare` made it (re-checked before every use).
        self.pin: Any = None
        # Compaction rewrites files a scrape reads: one at a time.
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ setup
    def prepare(self) -> bool:
        """Create the directory (0700, owned by us) and remove dead processes' files.

        Returns False (and sets :attr:`error`) when it cannot be used; nothing raises.
        """
        from ..core.trust import pin_private_dir

        try:
            # Every missing component 0700 whatever the umask, owner and ancestors checked, and
            # the identity pinned so a directory swapped later is refused (review 2026-12-b R4).
            self.pin = pin_private_dir(self.path, what="metrics directory")
            if not os.access(self.path, os.W_OK | os.X_OK):
                raise PermissionError(f"{self.path} is not writable")
            removed = 0
            for name, _typ, pid in self._entries():
                if pid is None or not _pid_alive(pid):
                    (self.path / name).unlink(missing_ok=True)
                    removed += 1
            if removed:
                log.info("sci_ext: removed %d metrics file(s) of dead processes from %s", removed, self.path)
        except OSError as exc:
            self.error = f"metrics directory {self.path} cannot be used: {exc.strerror or exc}"
            log.warning("sci_ext: %s", self.error)
            return False
        self.error = None
        return True

    @property
    def usable(self) -> bool:
        """True when :meth:`prepare` succeeded and :meth:`recheck` found nothing swapped since."""
        return self.error is None and self.path.is_dir()

    def recheck(self) -> bool:
        """Is the directory still the one :meth:`prepare` made (``lstat``: owner, mode, inode)?

        Called before every compaction and read, and by the server's health sampler on its
        schedule.  A swapped directory sets :attr:`error` (health says failing, with it)
        and is never read, compacted or given to kernels again.
        """
        if self.pin is None:
            return False
        try:
            self.pin.recheck()
        except OSError as exc:
            if self.error is None:
                log.warning("sci_ext: %s", exc)
            self.error = str(exc)
            return False
        return self.error is None

    def _entries(self) -> Iterator[tuple[str, str, int | None]]:
        """``(file name, type, pid or None for archives)`` of every metrics file."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return
        for name in names:
            match = _FILE_RE.match(name)
            if match is None:
                continue
            pid = match.group("pid")
            yield name, match.group("type"), None if pid == "archive" else int(pid)

    def files(self) -> list[str]:
        """Paths of every readable ``*.db`` file (skipping ones still being created)."""
        out = []
        for path in glob.glob(os.path.join(self.path, "*.db")):
            try:
                if os.path.getsize(path) >= _MIN_FILE_BYTES:
                    out.append(path)
            except OSError:
                continue  # vanished between glob and stat
        return out

    def pids(self) -> set[int]:
        """Pids that have files here."""
        return {pid for _name, _typ, pid in self._entries() if pid is not None}

    # -------------------------------------------------------------- compaction
    def compact(self, alive: Any = _pid_alive) -> CompactionResult:
        """Fold dead processes' files into the archives and delete them."""
        result = CompactionResult()
        if not self.usable or not self.recheck():
            return result
        by_pid: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for name, typ, pid in self._entries():
            if pid is not None and pid != os.getpid():
                by_pid[pid].append((name, typ))
        dead = sorted(pid for pid in by_pid if not alive(pid))
        if not dead:
            return result
        from prometheus_client.mmap_dict import MmapedDict

        with self.lock, self._file_lock():
            for typ in _ACCUMULATED:
                sources = [self.path / name for pid in dead for name, t in by_pid[pid] if t == typ]
                if not sources:
                    continue
                archive = self.path / f"{typ}_archive.db"
                totals: dict[str, float] = defaultdict(float)
                for src in [archive, *sources]:
                    try:
                        values = MmapedDict.read_all_values_from_file(str(src))
                        for key, value, _ts, _pos in values:
                            totals[key] += value
                    except FileNotFoundError:
                        continue
                    except Exception as exc:  # a torn file: keep what can be read, say so
                        log.warning("sci_ext: skipping unreadable metrics file %s: %s", src.name, exc)
                totals = bound_user_labels(totals)
                tmp = self.path / f".{typ}_archive.tmp"
                tmp.unlink(missing_ok=True)
                merged = MmapedDict(str(tmp))
                try:
                    for key, value in totals.items():
                        merged.write_value(key, value, 0.0)
                finally:
                    merged.close()
                os.replace(tmp, archive)
                result.files_merged += len(sources)
            for pid in dead:
                for name, _typ in by_pid[pid]:
                    with contextlib.suppress(FileNotFoundError):
                        (self.path / name).unlink()
                        result.files_removed += 1
        result.dead_pids = dead
        if dead:
            log.debug("sci_ext: compacted metrics of %d dead process(es)", len(dead))
        return result

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Across processes: two servers sharing a state dir never compact (or read mid-compaction) at once."""
        from filelock import FileLock, Timeout

        lock: FileLock | None = FileLock(str(self.path / ".compact.lock"), timeout=10, mode=0o600)
        try:
            lock.acquire()  # type: ignore[union-attr]
        except Timeout:
            log.warning("sci_ext: metrics directory lock busy for 10 s; going on without it")
            lock = None
        except OSError as exc:
            log.debug("sci_ext: no metrics directory lock: %s", exc)
            lock = None
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    # ----------------------------------------------------------------- reading
    def collect(self) -> list[Any]:
        """Metric families merged from every file; a file that vanishes or is torn is skipped."""
        if not self.usable or not self.recheck():
            return []
        from prometheus_client.multiprocess import MultiProcessCollector

        with self.lock, self._file_lock():
            files = self.files()
            try:
                return list(MultiProcessCollector.merge(files, accumulate=True))
            except Exception as exc:
                # A kernel died or a file was torn mid-read: read file by file, keep the good ones.
                log.debug("sci_ext: metrics merge failed (%s); retrying file by file", exc)
                good = []
                for path in files:
                    try:
                        MultiProcessCollector.merge([path], accumulate=True)
                    except Exception as err:  # a vanished or torn file is skipped by design
                        log.debug("sci_ext: skipping metrics file %s: %s", os.path.basename(path), err)
                    else:
                        good.append(path)
                return list(MultiProcessCollector.merge(good, accumulate=True))


class CombinedCollector:
    """One collector for the server's registries and the kernels' multiprocess files.

    Families with the same name on both sides are merged (samples with the same
    labels summed), so the exposition never has a duplicate family.
    """

    def __init__(self, registries: Iterable[Any], metrics_dir: MetricsDir | None) -> None:
        self.registries = list(registries)
        self.metrics_dir = metrics_dir

    def collect(self) -> Iterator[Any]:
        """Yield the merged metric families."""
        from prometheus_client.metrics_core import Metric
        from prometheus_client.samples import Sample

        families: dict[str, Any] = {}
        sources: list[Any] = []
        for registry in self.registries:
            sources.extend(registry.collect())
        if self.metrics_dir is not None:
            sources.extend(self.metrics_dir.collect())
        for family in sources:
            name = family.name
            samples = list(family.samples)
            if family.type != "counter" and name.endswith("_total"):
                # e.g. jupyter_server_terminals' gauge terminal_currently_running_total: promtool
                # rejects "_total" on a non-counter, so it is served without the suffix.
                name = name[: -len("_total")]
                samples = [s._replace(name=name + s.name[len(family.name) :]) for s in samples]
            have = families.get(name)
            if have is None:
                copy = Metric(name, family.documentation, family.type, family.unit)
                copy.samples = samples
                families[name] = copy
                continue
            if have.type != family.type:
                log.warning(
                    "sci_ext: metric %s has types %s and %s; kept the first", family.name, have.type, family.type
                )
                continue
            index = {(s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(have.samples)}
            for s in samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                at = index.get(key)
                if at is None or have.type == "gauge":
                    if at is None:
                        index[key] = len(have.samples)
                        have.samples.append(s)
                    continue
                old = have.samples[at]
                have.samples[at] = Sample(old.name, old.labels, old.value + s.value, old.timestamp, old.exemplar)
        yield from families.values()


def install_kernel_env(kernel_manager: Any, extra_env: Any) -> None:
    """Make every kernel ``kernel_manager`` starts get ``extra_env(kernel_id)`` in its launch environment.

    jupyter_client's ``MultiKernelManager.pre_start_kernel(kernel_name, kwargs)``
    is where the kernel id is fixed and ``kwargs`` (the launch keywords, with
    ``env`` when jupyter_server's session manager passes one) is still mutable;
    the provisioner later copies ``kwargs["env"]`` (or ``os.environ``) into the
    kernel process, and restarts reuse it.  Installing twice is a no-op.
    """
    if getattr(kernel_manager, "_sci_ext_env_installed", False):
        return
    original = kernel_manager.pre_start_kernel

    def pre_start_kernel(kernel_name: str | None, kwargs: dict[str, Any]) -> Any:
        km, name, kernel_id = original(kernel_name, kwargs)
        try:
            add = extra_env(kernel_id)
        except Exception as exc:  # never stop a kernel from starting
            log.warning("sci_ext: no metrics environment for kernel %s: %s", kernel_id, exc)
            add = {}
        if add:
            env = dict(kwargs.get("env") or os.environ)
            env.update(add)
            kwargs["env"] = env
        return km, name, kernel_id

    kernel_manager.pre_start_kernel = pre_start_kernel
    kernel_manager._sci_ext_env_installed = True
