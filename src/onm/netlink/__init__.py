"""The kernel's network configuration over netlink (pyroute2), for the agent and the lab.

One thin, typed adapter: `kernel.Kernel` is one network namespace's links, addresses, routes and
neighbours; `features` reads and changes ethtool features; `neighbours` follows the kernel's
neighbour and route events; `gateway_plan` computes a gateway host's NAT, firewall and policy
routing (pure), `nftables` applies its ruleset through libnftables and `gateway` the rest;
`vxlan` is a VXLAN tunnel's settings (the benchmark's kernel peer).
pyroute2 is untyped, so its objects stay inside this package.

Rules: the calling process never changes namespace (a socket inside another namespace is opened
by a short-lived child that enters it and passes the descriptor back); changes are idempotent
`ensure_*` operations ("already exists" is success); every failure is a `KernelError` naming
the object and the namespace.
"""
