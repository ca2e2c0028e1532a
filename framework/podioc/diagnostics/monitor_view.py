"""The terminal view of ``podioc monitor`` (textual): a table of PVs updating from PVA
monitors; ``/`` filters by name, ``p`` puts a value to the selected PV, ``q`` quits.

The PVs come from :func:`.monitor.discover`; the table cells from :class:`.monitor.Row`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from p4p.client.asyncio import Context, RemoteError
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, Static

from .monitor import Row

COLUMNS = ("PV", "VALUE", "UNITS", "SEVERITY", "TIMESTAMP", "RATE")
STYLES = {"NO_ALARM": "green", "MINOR": "bold yellow", "MAJOR": "bold red",
          "INVALID": "bold magenta"}


class MonitorApp(App[None]):
    """Live table of an IOC's PVs."""

    TITLE = "podioc monitor"
    BINDINGS: ClassVar[list[Any]] = [
        Binding("slash", "filter", "Filter"), Binding("p", "put", "Put"),
        Binding("escape", "cancel", "Cancel", show=False), Binding("q", "quit", "Quit")]
    # the table scrolls in the space left, so the prompt and footer stay on screen
    CSS = ("#table { height: 1fr; } #input { display: none; } "
           "#input.shown { display: block; }")

    def __init__(self, prefix: str, pvs: dict[str, bool], conf: dict[str, str] | None) -> None:
        super().__init__()
        self.prefix = prefix
        self.rows = {name: Row(name, writable) for name, writable in sorted(pvs.items())}
        self.conf = conf
        self.filter = ""
        self.mode = ""
        self.ctx: Any = None
        self.subs: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static(f"IOC {self.prefix}: {len(self.rows)} PVs", id="title")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Input(id="input")
        yield Static("", id="status")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        widths = {"PV": max(map(len, self.rows), default=10) + 2, "VALUE": 28, "UNITS": 8,
                  "SEVERITY": 9, "TIMESTAMP": 12, "RATE": 8}
        for column in COLUMNS:
            table.add_column(column, key=column, width=widths[column])
        self._fill()
        self.ctx = (Context("pva", conf=self.conf, useenv=False, nt=False) if self.conf
                    else Context("pva", nt=False))
        for name in self.rows:
            self.subs.append(self.ctx.monitor(name, self._updater(name), notify_disconnect=True))
        self.set_interval(1.0, self._refresh_rates)

    async def on_unmount(self) -> None:
        for sub in self.subs:
            sub.close()
        if self.ctx is not None:
            self.ctx.close()

    def _updater(self, name: str) -> Any:
        async def update(value: Any) -> None:
            row = self.rows[name]
            if isinstance(value, Exception):
                row.severity, row.value = "INVALID", f"({type(value).__name__})"
            else:
                row.update(value)
            self._show(row)
        return update

    def _cells(self, row: Row) -> list[Any]:
        stamp = (time.strftime("%H:%M:%S", time.localtime(row.timestamp))
                 + f".{int(row.timestamp * 1000) % 1000:03d}") if row.timestamp else ""
        name = row.name + (" *" if row.writable else "")
        return [name, row.value, row.units, Text(row.severity, style=STYLES.get(row.severity,
                                                                                "")),
                stamp, f"{row.rate:.1f}/s"]

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for name, row in self.rows.items():
            if self.filter.lower() in name.lower():
                table.add_row(*self._cells(row), key=name)

    def _show(self, row: Row) -> None:
        table = self.query_one(DataTable)
        if row.name not in table.rows:
            return
        for column, cell in zip(COLUMNS, self._cells(row), strict=True):
            table.update_cell(row.name, column, cell)

    def _refresh_rates(self) -> None:
        table = self.query_one(DataTable)
        for name in list(table.rows):
            table.update_cell(name, "RATE", f"{self.rows[str(name.value)].rate:.1f}/s")

    def _selected(self) -> Row | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.rows.get(str(key.value))

    def _ask(self, mode: str, placeholder: str, value: str = "") -> None:
        self.mode = mode
        box = self.query_one(Input)
        box.placeholder, box.value = placeholder, value
        box.add_class("shown")
        box.focus()

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#status", Static).update(Text(text, style=style))

    def action_filter(self) -> None:
        self._ask("filter", "show PVs whose name contains...", self.filter)

    def action_put(self) -> None:
        row = self._selected()
        if row is None:
            return
        if not row.writable:
            self._status(f"{row.name} is read-only", "bold red")
            return
        self._ask("put", f"new value for {row.name} (now {row.value})")

    def action_cancel(self) -> None:
        self.query_one(Input).remove_class("shown")
        self.query_one(DataTable).focus()
        self.mode = ""

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        mode, text = self.mode, event.value
        self.action_cancel()
        if mode == "filter":
            self.filter = text.strip()
            self._fill()
            self._status(f"filter: {self.filter!r}" if self.filter else "")
        elif mode == "put":
            await self._put(text)

    async def _put(self, text: str) -> None:
        row = self._selected()
        if row is None:
            return
        try:
            value = row.parse(text)
        except ValueError as exc:
            self._status(f"put {row.name}: {exc}", "bold red")
            return
        try:
            await asyncio.wait_for(self.ctx.put(row.name, value), 10.0)
        except RemoteError as exc:
            self._status(f"put {row.name} = {text.strip()} refused: {exc}", "bold red")
        except TimeoutError:
            self._status(f"put {row.name}: no answer within 10 s", "bold red")
        else:
            self._status(f"put {row.name} = {text.strip()}: done", "green")
