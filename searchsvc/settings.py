"""Every setting, declared once: its default, environment variable and help text.

Precedence: command-line option, then the `SEARCHSVC_*` environment variable, then the default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | float
    help: str

    @property
    def envvar(self) -> str:
        return "SEARCHSVC_" + self.name.upper()


INDEX = Setting("index", "index", "Index directory.")
WAIT = Setting(
    "wait", 30.0, "Seconds to wait for another process writing to the index before giving up."
)
