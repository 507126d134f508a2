"""`python -m onm.cli` is the `onm` command."""

from onm.cli.main import app

app()
