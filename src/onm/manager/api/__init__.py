"""The manager's REST API (FastAPI): thin routes over the use cases, one transaction each."""
