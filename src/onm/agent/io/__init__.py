"""The agent's low-level I/O adapters: namespaces, interfaces, packet and raw IPv6 sockets."""
