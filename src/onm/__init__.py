"""onm: an overlay network manager.

Tenants get virtual IPv4 networks carried over an IPv6 substrate of Linux hosts; pools of nodes
share one virtual IP with health-checked failover; edge pools carry traffic to external networks.
"""

__version__ = "0.1.0"
