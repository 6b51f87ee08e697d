"""`python -m searchsvc` is the `searchsvc` command."""

from searchsvc.cli import cli

cli(prog_name="searchsvc")
