"""`python -m mlops.cli`: the `mlops` command."""

from mlops.cli import app

app()
