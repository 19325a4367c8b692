"""``%sci_dashboard [--interval SECONDS] [--window MINUTES] [--stop]``: a live panel in the notebook.

One updater thread per kernel (and a one-off thread that imports plotly and draws the charts)
samples :func:`~sci_ext.core.telemetry.status.collect_status`
(the telemetry library's own sampling: no second psutil poller) every ``--interval``
seconds and refreshes the panel, so values move while other cells run, long ones
included (an event-loop callback would wait for the running cell to finish).  A
second ``%sci_dashboard`` shows the same panel again with the new options; it never
starts a second updater.  The updater stops on the panel's Stop button, on
``%sci_dashboard --stop``, when the panel's widgets are closed, on
``%unload_ext sci_ext`` and when the kernel exits.  In a terminal IPython the magic
prints a one-screen text summary instead.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .dashboard_model import DashboardModel, text_summary
from .lines import strip_comment
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["Dashboard", "DashboardMagics", "register"]

log = logging.getLogger("sci_ext.dashboard")


def collect_status() -> dict[str, Any]:
    """The status dict the dashboard shows (the telemetry library's collector)."""
    from sci_ext.core.telemetry.health import last_report
    from sci_ext.core.telemetry.status import collect_status as collect

    # The background monitor runs the health checks every monitoring.check_interval_seconds:
    # reuse its results once there are some (running every check per refresh cost the cell time).
    return collect(run_checks=last_report() is None)


class Dashboard:
    """The one panel and updater of a kernel."""

    def __init__(self, interval: float, window_minutes: float) -> None:
        self.interval = interval
        self.model = DashboardModel(window_seconds=window_minutes * 60)
        self.panel: Any = None
        self.cpu_seconds = 0.0  # CPU time the updater thread used (bench_dashboard.py reads it)
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the updater thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def configure(self, interval: float, window_minutes: float) -> None:
        """New options for the running updater (the next tick uses them)."""
        self.interval = interval
        self.model.window_seconds = window_minutes * 60

    def start(self) -> None:
        """Build the panel and start the updater (one thread)."""
        from .dashboard_widgets import DashboardPanel

        self.panel = DashboardPanel(on_stop=self.stop)
        self.tick()  # the panel shows values as soon as it is displayed
        self._thread = threading.Thread(target=self._loop, name="sci_ext-dashboard", daemon=True)
        self._thread.start()
        threading.Thread(target=self._draw_charts, name="sci_ext-dashboard-charts", daemon=True).start()

    def tick(self) -> None:
        """Sample once and refresh the panel."""
        started = time.thread_time()
        try:
            self.model.add(collect_status())
            if self.panel is not None:
                self.panel.update(self.model)
        except Exception:  # a failed sample must not kill the updater; say it once per kind
            self.errors += 1
            if self.errors == 1:
                log.exception("sci_ext dashboard: sampling failed")
        finally:
            self.cpu_seconds += time.thread_time() - started

    def _draw_charts(self) -> None:
        # plotly's import takes seconds: in its own thread, so neither the cell nor the
        # updater waits for it; the next refresh fills the figure with the samples so far.
        try:
            if self.panel is not None:
                self.panel.build_figure()
        except Exception:
            self.errors += 1
            log.exception("sci_ext dashboard: the charts could not be drawn")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.panel is not None and self.panel.closed:
                break
            self.tick()

    def stop(self, close_panel: bool = True) -> None:
        """Stop the updater and close the panel (idempotent).

        ``close_panel=False`` at kernel exit: the frontend has dropped the widgets' comms
        already, and closing them would send a comm_close per widget into the browser's
        console ("Comm not found for comm id ...").
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # Not longer: the thread may be in plotly's import; it closes nothing and exits after it.
            thread.join(timeout=2.0)
        if close_panel and self.panel is not None and not self.panel.closed:
            self.panel.close()


@magics_class
class DashboardMagics(Magics):
    """``%sci_dashboard``."""

    def __init__(self, shell: InteractiveShell, state: KernelState) -> None:
        super().__init__(shell)
        self.state = state
        self.dashboard: Dashboard | None = None

    @magic_arguments()
    @argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    @argument("--window", type=float, default=10.0, help="minutes of history the charts keep (default 10)")
    @argument("--stop", action="store_true", help="stop the updater and close the panel")
    @line_magic
    def sci_dashboard(self, line: str = "") -> Any:
        """Show a live health, resource, cache, retry, breaker, error and alert panel."""
        try:
            args = parse_argstring(self.sci_dashboard, strip_comment(line))
        except UsageError:
            raise
        except Exception as exc:  # argparse's SystemExit and friends: one line
            raise UsageError(f"%sci_dashboard: {exc}") from None
        if args.stop:
            if self.dashboard is None or not self.dashboard.running:
                print("sci_dashboard: not running")
                return None
            self.dashboard.stop()
            print(f"sci_dashboard: stopped after {self.dashboard.model.samples} samples")
            return None
        for option, value, low in (("--interval", args.interval, 0.1), ("--window", args.window, 0.1)):
            if not math.isfinite(value) or value < low:
                raise UsageError(f"%sci_dashboard: {option} must be a number >= {low}, got {value}")
        if not hasattr(self.shell, "kernel"):  # a terminal IPython: no widgets to draw
            print(text_summary(collect_status()))
            return None
        from IPython.display import display

        if self.dashboard is not None and self.dashboard.running and not self.dashboard.panel.closed:
            self.dashboard.configure(args.interval, args.window)
        else:
            self.dashboard = Dashboard(args.interval, args.window)
            self.dashboard.start()
        display(self.dashboard.panel.box)
        return None

    def close(self) -> None:
        """Stop the updater and close the panel (``%unload_ext``)."""
        if self.dashboard is not None:
            self.dashboard.stop()

    def at_exit(self) -> None:
        """Stop the updater at kernel exit, leaving the widgets alone (the frontend let go of them)."""
        if self.dashboard is not None:
            self.dashboard.stop(close_panel=False)


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Register ``%sci_dashboard``; stop its updater on unload and at exit."""
    magics = DashboardMagics(ipython, state)
    ipython.register_magics(magics)
    state.on_close(magics.close)
    atexit.register(magics.at_exit)
    state.on_close(lambda: atexit.unregister(magics.at_exit))
