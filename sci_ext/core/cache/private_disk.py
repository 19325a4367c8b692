"""diskcache's ``Disk`` with private value files: sub-directories 0700 and files 0600, whatever the umask.

diskcache streams large values to files in two levels of sub-directories that it makes
with ``os.makedirs`` and ``open``, so their modes follow the process umask (0777/0666
under umask 000, as a JupyterHub spawner may give).  The cache directory above them is
0700 already, so no one else could reach them; making them private too keeps the rule
"every directory sci_ext creates is 0700" true without exceptions.
"""

from __future__ import annotations

import os
from typing import Any

import diskcache

from .. import trust

__all__ = ["PrivateDisk"]


class PrivateDisk(diskcache.Disk):
    """A ``diskcache.Disk`` whose value files and their directories are private."""

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> int | None:
        directory = os.path.dirname(full_path)
        if not os.path.isdir(directory):
            trust.ensure_private_dir(directory, what="cache directory")
        size: int | None = super()._write(full_path, iterator, mode, encoding)
        if size is not None:
            os.chmod(full_path, 0o600)
        return size
