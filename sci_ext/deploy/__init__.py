"""Blue/green deployment of a configuration file, with health-checked switch and rollback.

``jupyter sci deploy NEW.toml`` backs up, validates and migrates ``NEW.toml``, writes it
to the inactive slot, starts a candidate Jupyter server on it, requires its health and
metrics, then switches the active slot atomically.  Running servers and kernels pick the
switch up through hot reload.  :mod:`.slots` holds the slot files and the pointer,
:mod:`.candidate` the candidate server, :mod:`.pipeline` the steps.
"""

from __future__ import annotations

from .pipeline import DeployError, DeployReport, deploy, rollback
from .slots import SlotStatus, SlotStore

__all__ = ["DeployError", "DeployReport", "SlotStatus", "SlotStore", "deploy", "rollback"]
