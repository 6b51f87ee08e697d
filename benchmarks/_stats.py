"""Figures shared by the benchmark scripts (imported by name: scripts run as `python benchmarks/X.py`
have this folder first on sys.path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def percentile(values: list[float], p: float) -> float:
    """The value at rank p (0-100) of the sorted values, nearest rank, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def processes() -> Iterator[tuple[int, dict[str, str]]]:
    """(pid, the fields of /proc/PID/status) of every process that can be read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        yield int(entry.name), dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
