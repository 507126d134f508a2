"""Test helpers shared by several test packages (processes, servers, ports)."""
