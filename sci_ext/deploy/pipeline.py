"""The deploy and rollback steps, each logged (one correlation id per deployment) and audited.

1. finish a switch an earlier run left half-way (:meth:`SlotStore.reconcile`);
2. back up the new file and migrate a copy of it (older sci_ext schemas);
3. validate it as the user layer, with the project file and environment it will meet;
4. write it into the inactive slot;
5. start a candidate server on the slot and require ``/sci/health`` and ``/sci/metrics``;
6. back up the live file and switch: the pointer (commit point), then the live file.

Any failure before step 6 leaves the active slot and the live file untouched.  A
SIGKILL at any step leaves a valid active slot; the next deploy finishes or redoes
the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core import context
from ..core.config.manager import SCHEMA_VERSION
from ..core.errors import SciExtError
from ..core.trust import UntrustedPathError, atomic_write, check_ancestors, ensure_private_dir, read_private_file
from .candidate import CandidateError, probe_candidate
from .slots import SlotStatus, SlotStore

__all__ = ["DeployError", "DeployReport", "deploy", "rollback", "slot_store"]

log = logging.getLogger("sci_ext.deploy")

Progress = Callable[[str], None]


class DeployError(SciExtError):
    """A deploy or rollback was refused; the active slot is unchanged."""


@dataclass
class DeployReport:
    """What a deploy or rollback did."""

    correlation_id: str
    slot: str
    previous: str | None
    target: str
    seconds: float
    steps: list[str] = field(default_factory=list)


def slot_store(target: Path | None = None) -> SlotStore:
    """The slots of ``target`` (default: the user config file) under ``core.state_dir/deploy``."""
    from ..core.config import get_config, get_config_manager

    live = Path(target) if target is not None else get_config_manager().user_path
    return SlotStore(Path(get_config().core.state_dir).expanduser() / "deploy", live)


def _audit(event: str, **details: object) -> None:
    try:
        from ..core.security import get_security_manager

        get_security_manager().audit(event, **details)
    except Exception as exc:  # the deploy itself succeeded: say so, do not undo it
        log.warning("deploy: could not write the audit record %s: %s", event, exc)


class _Steps:
    """Numbered progress lines, each also a log record of the deployment."""

    def __init__(self, total: int, progress: Progress | None, report: DeployReport) -> None:
        self.total = total
        self.n = 0
        self.progress = progress
        self.report = report

    def __call__(self, message: str, *, numbered: bool = True) -> None:
        if numbered:
            self.n += 1
            message = f"[{self.n}/{self.total}] {message}"
        self.report.steps.append(message)
        log.info("deploy: %s", message, extra={"deploy_slot": self.report.slot})
        if self.progress is not None:
            self.progress(message)


def _lock(store: SlotStore):  # type: ignore[no-untyped-def]
    from filelock import FileLock, Timeout

    store.ensure()
    lock = FileLock(str(store.root / "deploy.lock"), timeout=0, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise DeployError(f"another deploy is running ({store.root / 'deploy.lock'} is held)") from None
    return lock


def deploy(
    new_file: Path | str,
    *,
    target: Path | None = None,
    candidate: bool = True,
    startup_timeout: float = 90.0,
    progress: Progress | None = None,
) -> DeployReport:
    """Deploy ``new_file`` blue/green; raises :class:`DeployError` (active slot untouched)."""
    source = Path(new_file).expanduser()
    store = slot_store(target)
    started = time.monotonic()
    with context.using() as ctx:
        lock = _lock(store)
        try:
            if store.reconcile():
                log.warning("deploy: the live file did not hold the active slot (an interrupted switch); restored")
            active = store.active()
            # Before the first deploy the live file becomes slot blue: only once the new config is
            # valid (a refused first deploy leaves no slot behind; --status would show an empty one).
            previous = active or "blue"
            slot = store.inactive() if active else "green"
            report = DeployReport(str(ctx.correlation_id), slot, previous, str(store.target), 0.0)
            steps = _Steps(6 if candidate else 5, progress, report)
            _audit("deploy.start", source=str(source), slot=slot, correlation_id=ctx.correlation_id)
            kept = store.read_slot(slot)  # the config active before the last switch: rollback's target
            try:
                text = _prepare(source, store, steps)
                if active is None:
                    store.adopt_target()
                path = store.write_slot(slot, text)
                steps(f"written to the inactive slot {slot} ({path})")
                if candidate:
                    steps("starting a candidate server on the new slot")
                    try:
                        result = probe_candidate(path, startup_timeout=startup_timeout, progress=progress)
                    except CandidateError as exc:
                        raise DeployError(f"candidate server refused: {exc}") from None
                    detail = f"health {result.health.get('status')}, {result.metrics_families} metric families"
                    steps(f"candidate passed ({detail}, checked by {result.metrics_checker})", numbered=False)
                    for note in result.notes:
                        steps(f"note: {note}", numbered=False)
                backup = store.backup_target("pre-switch")
                store.switch(slot)
                steps(
                    f"switched {previous} -> {slot}; {store.target} now holds it"
                    + (f" (previous file kept as {backup})" if backup else "")
                )
            except DeployError as exc:
                if kept is not None and store.read_slot(slot) != kept:
                    store.write_slot(slot, kept)  # rollback still goes where it went before
                _audit("deploy.refused", source=str(source), slot=slot, reason=str(exc)[:300])
                log.error("deploy: refused: %s", exc)
                raise
            report.seconds = time.monotonic() - started
            _audit("deploy.switch", source=str(source), slot=slot, previous=previous, correlation_id=ctx.correlation_id)
            return report
        finally:
            lock.release()


def _needs_migration(path: Path, source: Path) -> bool:
    """Whether ``path`` is an older schema (a migration would rename keys or bump the version)."""
    from ..core.config.files import flatten_table, read_toml
    from ..core.config.manager import RENAMED_KEYS

    try:
        table, _ = read_toml(path)
    except SciExtError as exc:
        raise DeployError(str(exc).replace(str(path), str(source))) from None
    version = table.get("schema_version")
    if version is not None:
        return isinstance(version, int) and version < SCHEMA_VERSION
    flat = flatten_table({k: v for k, v in table.items() if isinstance(v, dict)})
    return any(key in renamed for renamed in RENAMED_KEYS.values() for key in flat)


def _prepare(source: Path, store: SlotStore, steps: _Steps) -> str:
    """Steps 1-3: back up, migrate and validate a copy of ``source``; returns its text."""
    from ..core.config import ConfigManager
    from ..core.config.migrate import migrate

    if not source.is_file():
        raise DeployError(f"{source}: no such file (expected the new config, a .toml file)")
    if source.suffix != ".toml":
        raise DeployError(f"{source}: expected a sci_ext TOML file (.toml)")
    # The candidate is read once, from a file only the user (or root) can write, in a directory
    # nobody else can swap; every later step uses the private staged copy of those bytes.
    try:
        check_ancestors(source, what="candidate config")
        raw = read_private_file(source, what="candidate config")
    except UntrustedPathError as exc:
        raise DeployError(str(exc)) from None
    staging_dir = ensure_private_dir(store.root / "staging", what="deploy staging directory")
    staged = staging_dir / "candidate.toml"
    atomic_write(staged, raw)
    if _needs_migration(staged, source):
        try:
            result = migrate(staged)
        except SciExtError as exc:
            raise DeployError(f"{source}: migration failed: {str(exc).replace(str(staged), str(source))}") from None
        for leftover in staging_dir.glob("candidate.toml.bak-*"):
            leftover.unlink()
        steps("migrated: " + ("; ".join(result.notes) or f"schema_version set to {SCHEMA_VERSION}"))
    else:
        steps(f"schema {SCHEMA_VERSION}: nothing to migrate")
    problems = ConfigManager(user_path=staged).validate()
    if problems:
        first = problems[0].replace(str(staged), str(source))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DeployError(f"invalid config: {first}{more}")
    steps("validated with the project file and environment it will meet")
    # The copy of what was deployed: only for a config that passed (a refused one leaves nothing).
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backups = ensure_private_dir(store.root / "backups", what="deploy backups directory")
    backup = backups / f"{source.name}.{stamp}.deployed"
    atomic_write(backup, raw)  # the bytes that were read and validated, not the file as it is now
    steps(f"backed up {source} to {backup}")
    return staged.read_text(encoding="utf-8")


def rollback(*, target: Path | None = None, progress: Progress | None = None) -> DeployReport:
    """Switch back to the other slot (the one active before the last deploy)."""
    store = slot_store(target)
    started = time.monotonic()
    with context.using() as ctx:
        lock = _lock(store)
        try:
            store.reconcile()
            previous = store.active()
            if previous is None:
                raise DeployError(f"nothing to roll back: no deploy has been made to {store.target}")
            slot = store.other(previous)
            if store.read_slot(slot) is None:
                raise DeployError(f"nothing to roll back to: slot {slot} is empty")
            if store.rollback_target() != slot:
                raise DeployError(
                    f"slot {slot} holds a config that was never active (a deploy was interrupted); "
                    f"deploy the config you want instead of rolling back"
                )
            report = DeployReport(str(ctx.correlation_id), slot, previous, str(store.target), 0.0)
            steps = _Steps(1, progress, report)
            backup = store.backup_target("pre-rollback")
            store.switch(slot)
            steps(f"rolled back {previous} -> {slot}" + (f" (previous file kept as {backup})" if backup else ""))
            _audit("deploy.rollback", slot=slot, previous=previous, correlation_id=ctx.correlation_id)
            report.seconds = time.monotonic() - started
            return report
        finally:
            lock.release()


def status(target: Path | None = None) -> SlotStatus:
    """Both slots and the pointer (``jupyter sci deploy --status``)."""
    return slot_store(target).status()
