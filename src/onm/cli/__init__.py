"""The `onm` command line: typer commands over a typed API client."""
