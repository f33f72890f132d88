"""What a search prints while it runs (rich markup); ``quiet`` prints nothing."""

from __future__ import annotations

from rich.console import Console as _Rich
from rich.table import Table

__all__ = ["Console"]


class Console:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self._c = None if quiet else _Rich(highlight=False)

    def print(self, *a, **kw) -> None:
        if self._c is not None:
            self._c.print(*a, **kw)

    def table(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        if self._c is None:
            return
        t = Table(title=title, show_lines=False)
        for h in header:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*r)
        self._c.print(t)
