"""The lab: hosts, substrate and nodes built out of network namespaces on one machine.

`topology` loads a lab file strictly; `plan` turns it (and what the manager allocated) into
the namespaces, links, addresses and routes to make; `netns` makes them with idempotent `ip`
commands; `state` records everything made; `processes` runs the manager and the agents;
`provision` loads the topology into the manager; `runner` puts these together for `onm lab`.
"""
