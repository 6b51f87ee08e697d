"""Getting posts in: finding and reading files (sources, listing), validating them into a batch and
writing it in one commit (batch), and removing posts (delete)."""
