"""The ipywidgets panel of ``%sci_dashboard``: badges, plotly series, breakers, errors, alerts.

Built once, then updated in place from a :class:`~.dashboard_model.DashboardModel`:
the figure with ``FigureWidget.batch_update()`` (one message per refresh), the HTML
parts only when their text changed.  ipywidgets is imported on first use of the magic;
plotly and anywidget (which plotly 7's ``FigureWidget`` needs) by :meth:`DashboardPanel.build_figure`,
which the updater thread calls, so the panel appears before plotly's slow import ends.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Mapping
from typing import Any

from .dashboard_model import SERIES, DashboardModel, format_bytes

__all__ = ["DashboardPanel"]

_COLOURS = {
    "ok": "#2e7d32",
    "degraded": "#ef6c00",
    "failing": "#c62828",
    "closed": "#2e7d32",
    "half_open": "#ef6c00",
    "open": "#c62828",
}


def _badge(label: str, state: str) -> str:
    colour = _COLOURS.get(state, "#616161")
    return (
        f"<span class='sci-badge' data-state='{html.escape(state)}' style='display:inline-block;margin:2px 4px 2px 0;"
        f"padding:1px 8px;border-radius:10px;color:white;background:{colour};font-size:12px'>"
        f"{html.escape(label)}: {html.escape(state)}</span>"
    )


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _table(header: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f"<div style='color:#616161;font-size:12px'>{html.escape(empty)}</div>"
    head = "".join(f"<th style='text-align:left;padding-right:12px'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding-right:12px'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table style='font-size:12px'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class DashboardPanel:
    """One panel; :meth:`update` refreshes it from a model."""

    def __init__(self, on_stop: Callable[[], None]) -> None:
        import ipywidgets as widgets

        self.figure: Any = None  # built by build_figure(), off the cell's path (plotly's import is slow)
        self.header = widgets.HTML()
        self.breakers = widgets.HTML()
        self.alerts = widgets.HTML()
        self.errors = widgets.HTML()
        stop = widgets.Button(description="Stop", button_style="warning", layout=widgets.Layout(width="80px"))
        stop.on_click(lambda _button: on_stop())
        section = widgets.HTML
        # The figure is shown through an Output widget so that it can be drawn later and again:
        # plotly's import alone takes seconds (nbformat, jsonschema), so the panel appears at
        # once and the updater thread adds the charts.  And plotly 7's anywidget view, when it
        # is the first one on a busy page, sometimes comes up before its data and stays empty
        # (seen in JupyterLab 4.6 + anywidget 0.11).  A view reports the traces it drew
        # (_js2py_traceDeltas); if it drew fewer than the figure has, show a fresh copy once.
        self.plot = widgets.Output()
        self.loading = widgets.HTML("<div style='color:#616161;font-size:12px'>charts loading…</div>")
        self._redraws = 0
        self.box = widgets.VBox(
            [
                widgets.HBox([self.header, stop]),
                self.loading,
                self.plot,
                section("<b>Breakers</b>"),
                self.breakers,
                section("<b>Active alerts</b>"),
                self.alerts,
                section("<b>Recent errors</b>"),
                self.errors,
            ]
        )
        self.box.add_class("sci-dashboard")
        self._names = list(SERIES)

    def build_figure(self) -> None:
        """Import plotly and show the charts (the updater thread calls it first; idempotent)."""
        if self.figure is not None or self.closed:
            return
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if self.closed:  # stopped while plotly was being imported: open no new comm
            return
        titles = [f"{title} ({unit})" if unit else title for title, unit in SERIES.values()]
        base = make_subplots(rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.22)
        for i, name in enumerate(self._names):
            base.add_scatter(x=[], y=[], mode="lines+markers", name=SERIES[name][0], row=i // 3 + 1, col=i % 3 + 1)
        base.update_layout(height=440, margin={"l": 40, "r": 10, "t": 40, "b": 30}, showlegend=False)
        base.update_xaxes(tickformat="%H:%M:%S", nticks=4)
        # Axes that mean something before the first point (plotly's empty default is -1..4):
        # percentages 0..100, everything else from 0 (1 until there is data to scale to).
        for i, (_title, unit) in enumerate(SERIES.values()):
            row, col = i // 3 + 1, i % 3 + 1
            if unit == "%":
                base.update_yaxes(range=[0, 100], row=row, col=col)
            else:
                base.update_yaxes(range=[0, 1], rangemode="nonnegative", row=row, col=col)
        self.figure = go.FigureWidget(base)
        self._show_figure()
        self.loading.layout.display = "none"

    def _show_figure(self) -> None:
        # From any thread: append_display_data, not `with self.plot: display(...)` (which
        # captures the output of whichever cell runs at the time).
        self.plot.outputs = ()
        self.plot.append_display_data(self.figure)
        self.figure.observe(self._on_view_drawn, names=["_js2py_traceDeltas"])

    def _on_view_drawn(self, change: Any) -> None:
        deltas = (change.get("new") or {}).get("trace_deltas")
        if deltas is None or len(deltas) >= len(self.figure.data) or self._redraws >= 3:
            return
        import plotly.graph_objects as go

        self._redraws += 1
        old = self.figure
        old.unobserve(self._on_view_drawn, names=["_js2py_traceDeltas"])
        self.figure = go.FigureWidget(old.to_dict())
        self._show_figure()
        old.close()

    @property
    def closed(self) -> bool:
        """Whether the panel's widgets were closed (by Stop, ``%sci_dashboard --stop`` or the frontend)."""
        return getattr(self.box, "comm", None) is None

    def close(self) -> None:
        """Close the panel's own widgets (ends their comms), leaves and figure first, then the box.

        Not ``Widget.close_all()``: that closes every widget of the kernel, other outputs' too,
        whose views then fail in the browser ("no comm channel defined").
        """
        figure = self.figure
        if figure is not None:
            figure.unobserve(self._on_view_drawn, names=["_js2py_traceDeltas"])
        for child in (figure, self.plot, *self._leaves(self.box), self.box):
            if getattr(child, "comm", None) is not None:
                child.close()

    @staticmethod
    def _leaves(box: Any) -> list[Any]:
        out: list[Any] = []
        for child in getattr(box, "children", ()):
            out.extend(DashboardPanel._leaves(child))
            out.append(child)
        return out

    def update(self, model: DashboardModel) -> None:
        """Refresh the figure and the HTML parts from ``model``."""
        status: Mapping[str, Any] = model.latest
        # ISO strings, not datetime objects: plotly's widget serializer sends them as they are.
        if self.figure is not None:
            self._update_figure(model)
        self._update_html(model, status)

    def _update_figure(self, model: DashboardModel) -> None:
        x = [dt.datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds") for t in model.times]
        with self.figure.batch_update():
            for i, (trace, name) in enumerate(zip(self.figure.data, self._names, strict=True)):
                trace.x = x
                trace.y = list(model.series[name])
                if SERIES[name][1] != "%" and any(v is not None for v in model.series[name]):
                    axis = self.figure.layout["yaxis" if i == 0 else f"yaxis{i + 1}"]
                    if axis.autorange is not True:
                        axis.autorange = True  # real values now: scale to them (from 0)

    def _update_html(self, model: DashboardModel, status: Mapping[str, Any]) -> None:
        res = status.get("resources") or {}
        mem = res.get("memory") or {}
        badges = "".join(_badge(str(c.get("name")), str(c.get("status"))) for c in status.get("checks") or [])
        gpus = "".join(f" · GPU{g.get('index')} {g.get('utilization_percent')}%" for g in res.get("gpus") or [])
        header = (
            f"<div class='sci-dashboard-header'><b>sci_ext</b> {_badge('status', str(status.get('status', '?')))}"
            f"<span style='font-size:12px'>CPU {res.get('cpu_percent', '-')}% · memory {mem.get('percent', '-')}% "
            f"({format_bytes(mem.get('used_bytes'))}){gpus} · sample {model.samples} at {_when(status.get('time'))}"
            f"</span><br>{badges}</div>"
        )
        self._set(self.header, header)
        self._set(
            self.breakers,
            _table(
                ["name", "state", "failures", "next trial"],
                [
                    [b.get("name"), b.get("state"), b.get("failures"), _when(b.get("next_attempt_at"))]
                    for b in status.get("breakers") or []
                ],
                "no breakers yet",
            ),
        )
        self._set(
            self.alerts,
            _table(
                ["alert", "severity", "since", "summary"],
                [
                    [a.get("name"), a.get("severity"), _when(a.get("since")), a.get("summary")]
                    for a in status.get("alerts") or []
                ],
                "no active alerts",
            ),
        )
        self._set(
            self.errors,
            _table(
                ["time", "where", "category", "error", "correlation id"],
                [
                    [
                        _when(e.get("time")),
                        e.get("where"),
                        e.get("category"),
                        e.get("error_type"),
                        e.get("correlation_id"),
                    ]
                    for e in (status.get("errors") or [])[:10]
                ],
                "no errors recorded",
            ),
        )

    @staticmethod
    def _set(widget: Any, value: str) -> None:
        if widget.value != value:  # one comm message only when something changed
            widget.value = value
