"""IP protocol numbers, shared by the IPv4 Protocol and IPv6 Next Header fields.

IANA "protocol-numbers" registry; the IPv6 extension headers are RFC 8200 section 4.
"""

from __future__ import annotations

import enum


class IpProtocol(enum.IntEnum):
    HOPOPTS = 0  # IPv6 Hop-by-Hop Options, RFC 8200 section 4.3
    ICMP = 1  # RFC 792
    IPV4 = 4  # IPv4 encapsulation, RFC 2003 / RFC 2473
    TCP = 6  # RFC 9293
    UDP = 17  # RFC 768
    IPV6 = 41  # IPv6 encapsulation, RFC 2473
    ROUTING = 43  # RFC 8200 section 4.4
    FRAGMENT = 44  # RFC 8200 section 4.5
    ESP = 50  # RFC 4303
    AH = 51  # RFC 4302
    ICMPV6 = 58  # RFC 4443
    NONXT = 59  # No Next Header, RFC 8200 section 4.7
    DSTOPTS = 60  # Destination Options, RFC 8200 section 4.6
    MOBILITY = 135  # RFC 6275
    HIP = 139  # RFC 7401
    SHIM6 = 140  # RFC 5533
