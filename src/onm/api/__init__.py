"""The neutral wire layer every component shares: the REST API's schemas, the typed client, the
SSE reader and writer, and the one model <-> wire codec.

It sits below manager, agent, lab and CLI (DESIGN.md section 8) and imports none of them, so an
agent or the CLI reaches the manager without loading the web server or the database layer.
"""
