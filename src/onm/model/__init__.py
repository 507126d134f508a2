"""The typed, immutable domain model: what the manager stores and the agents receive.

Frozen dataclasses with `NewType` ids, so a node id is never passed where a network id is
expected. Validation of user input happens in the manager's use cases; these types only hold
values that are already valid.
"""

from onm.model.event import Event
from onm.model.grant import Grant
from onm.model.host import Host, HostStatus
from onm.model.ids import EventSeq, HostId, NetworkId, NodeId, TenantId, TokenId
from onm.model.network import Encoding, Network
from onm.model.node import Node
from onm.model.principal import Principal, PrincipalKind
from onm.model.resolution import Resolution
from onm.model.tenant import Tenant

__all__ = [
    "Encoding",
    "Event",
    "EventSeq",
    "Grant",
    "Host",
    "HostId",
    "HostStatus",
    "Network",
    "NetworkId",
    "Node",
    "NodeId",
    "Principal",
    "PrincipalKind",
    "Resolution",
    "Tenant",
    "TenantId",
    "TokenId",
]
