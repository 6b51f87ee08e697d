"""`python -m searchsvc` is the `searchsvc` command."""

from .cli import cli

cli(prog_name="searchsvc")
