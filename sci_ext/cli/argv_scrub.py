"""Hide a ``--token`` value from ``/proc/PID/cmdline`` (review 2026-12-b R5).

A command-line argument is readable by every local user (``ps``, ``/proc/PID/cmdline``)
for as long as the process runs.  ``jupyter sci health --url`` therefore prefers
``--token-file`` or ``$SCI_EXT_TOKEN``; when ``--token`` is used all the same, the value
is overwritten in the process's own argument area as early as the command line starts,
which shortens the window to the interpreter's start-up (a few hundred milliseconds)
but cannot close it: ``--help`` says so.  Linux only (``/proc/self/stat`` fields 48-49
give the argument area, ``/proc/self/mem`` writes it); elsewhere nothing is done.
Standard library only.
"""

from __future__ import annotations

__all__ = ["scrub_argv_option"]


def _arg_area() -> tuple[int, int] | None:
    try:
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()  # the command name may hold spaces
    try:  # field 3 is fields[0]: arg_start and arg_end are fields 48 and 49
        return int(fields[45]), int(fields[46])
    except (IndexError, ValueError):
        return None


def scrub_argv_option(option: str = "--token") -> bool:
    """Overwrite the value of ``option`` (``--token VALUE`` or ``--token=VALUE``) with ``*``; True if done."""
    area = _arg_area()
    if area is None or area[1] <= area[0]:
        return False
    start, end = area
    try:
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            raw = bytearray(mem.read(end - start))
            args, offset, spans = raw.split(b"\0"), 0, []
            flag = option.encode()
            for i, arg in enumerate(args):
                if arg == flag and i + 1 < len(args):
                    spans.append((offset + len(arg) + 1, len(args[i + 1])))
                elif arg.startswith(flag + b"="):
                    spans.append((offset + len(flag) + 1, len(arg) - len(flag) - 1))
                offset += len(arg) + 1
            for at, length in spans:
                mem.seek(start + at)
                mem.write(b"*" * length)
    except (OSError, ValueError):
        return False
    return bool(spans)
