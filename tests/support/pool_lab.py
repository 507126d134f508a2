"""Seed 0's FIG. 2B as a lab, for the pool system tests and `make bench-pools`: requester J on
host r, pool web on 10.0.0.3 with members H (J's area: nearest) and G (another locale), an HTTP
check every `INTERVAL` s with fall `FALL`."""

from __future__ import annotations

INTERVAL, FALL = 0.2, 2
POOL_IP, PORT = "10.0.0.3", 8080
TOPOLOGY = f"""
hosts:
  - {{name: r, location: {{locale: 1, area: 1, rack: 1, node: 1}}}}
  - {{name: s, location: {{locale: 1, area: 1, rack: 2, node: 1}}}}
  - {{name: t, location: {{locale: 2, area: 1, rack: 1, node: 1}}}}
tenants: [{{name: z}}]
networks:
  - {{name: znet, tenant: z, cidr: 10.0.0.0/24}}
nodes:
  - {{name: j, network: znet, host: r, ip: 10.0.0.10}}
  - {{name: h, network: znet, host: s, ip: 10.0.0.8}}
  - {{name: g, network: znet, host: t, ip: 10.0.0.7}}
pools:
  - name: web
    network: znet
    ip: {POOL_IP}
    policy: nearest
    check: {{kind: http, port: {PORT}, path: /healthz, interval: {INTERVAL}, timeout: 0.2,
             rise: 2, fall: {FALL}}}
    members: [g, h]
"""
