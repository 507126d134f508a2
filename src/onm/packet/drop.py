"""Why a packet was dropped: one enum used by every layer, the metrics and the eBPF code.

The numeric values are part of the datapath contract (they index counters in userspace and in
BPF maps), so a value is never reused or renumbered; new reasons are appended.
"""

from __future__ import annotations

import enum


class DropReason(enum.IntEnum):
    """A named reason for not forwarding a packet."""

    # Ethernet / ARP
    ETHERNET_TRUNCATED = 1
    ETHERTYPE_UNSUPPORTED = 2
    ARP_MALFORMED = 3
    ARP_UNSUPPORTED = 4
    # IPv4 (RFC 791)
    IPV4_TRUNCATED = 10
    IPV4_BAD_VERSION = 11
    IPV4_BAD_HEADER_LENGTH = 12
    IPV4_BAD_TOTAL_LENGTH = 13
    IPV4_BAD_CHECKSUM = 14
    IPV4_BAD_OPTIONS = 15
    IPV4_SOURCE_ROUTE = 16
    IPV4_BAD_FRAGMENT = 17
    IPV4_ILLEGAL_SOURCE = 18
    # IPv6 (RFC 8200)
    IPV6_TRUNCATED = 20
    IPV6_BAD_VERSION = 21
    IPV6_BAD_PAYLOAD_LENGTH = 22
    IPV6_BAD_EXTENSION_HEADER = 23
    IPV6_ROUTING_HEADER = 24
    IPV6_BAD_FRAGMENT = 25
    IPV6_EXTENSION_NOT_CARRIED = 26  # an extension header no agent sends (docs/protocols.md)
    # Transport and ICMP
    L4_TRUNCATED = 30
    ICMP_TRUNCATED = 31
    ICMP_BAD_CHECKSUM = 32
    ICMP_UNTRANSLATABLE = 33
    ICMP_ERROR_NESTED = 34
    ICMP_FRAGMENTED = 35
    UDP_ZERO_CHECKSUM = 36
    UDP_BAD_LENGTH = 37  # RFC 768 Length disagrees with the datagram's
    # Translation (RFC 7915)
    ADDRESS_UNMAPPABLE = 40
    TTL_EXPIRED = 41
    PACKET_TOO_BIG = 42
    PROTOCOL_UNTRANSLATABLE = 43
    PROTOCOL_NOT_CARRIED = 44  # not among what the network's encoding carries
    # Encapsulation (RFC 2473)
    ENCAP_BAD_INNER = 50
    ENCAP_ADDRESS_MISMATCH = 51
    # Agent: frames from nodes (seed 0: the communication manager checks what its nodes send)
    UNKNOWN_PORT = 60
    SPOOFED_SOURCE_MAC = 61
    SPOOFED_SOURCE_IP = 62
    ARP_SPOOFED = 63
    NO_MAPPING = 64
    DESTINATION_MISMATCH = 65
    NO_ROUTE = 66
    POOL_ALL_DOWN = 67  # a pool with no member taking traffic, fail-closed: ICMP unreachable
    EDGE_NO_GATEWAY = 68  # routed to an edge pool with no live gateway: ICMP unreachable
    # Agent: packets from the substrate (verified against where nodes really live)
    NOT_LOCAL_DESTINATION = 70
    SPOOFED_SUBSTRATE_SOURCE = 71
    NETWORK_MISMATCH = 72
    # Agent in edge role (seed 1): what a gateway takes from the substrate and the outside
    GATEWAY_NOT_SERVING = 73  # for a network this host has no gateway of
    GATEWAY_INTERNAL_DESTINATION = 74  # an "external" destination inside the network's CIDRs
    GATEWAY_NO_RESIDENT = 75  # from outside, for an address no node of the network has
    # Agent: datapath
    TRANSMIT_FAILED = 80

    @property
    def label(self) -> str:
        """The metric label: lower case, stable."""
        return self.name.lower()
