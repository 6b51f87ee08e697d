"""Figures shared by the benchmark scripts (imported by name: scripts run as `python benchmarks/X.py`
have this folder first on sys.path)."""

from __future__ import annotations


def percentile(values: list[float], p: float) -> float:
    """The value at rank p (0-100) of the sorted values, nearest rank, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
