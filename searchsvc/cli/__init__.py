"""The command-line edge: `searchsvc` and its commands (commands.py), and how results read in a
terminal (terminal.py)."""

from searchsvc.cli.commands import cli

__all__ = ["cli"]
