"""Stateless IP/ICMP Translation (SIIT, RFC 7915), both directions, sans-IO.

`translate_4to6` and `translate_6to4` take a packet, an address mapper and a configuration, and
return `Translated`, `Drop` or `IcmpError`. `docs/rfc7915.md` traces each requirement of RFC 7915
sections 4 and 5 to the test that checks it.
"""

from onm.packet.siit.four_to_six import translate_4to6
from onm.packet.siit.result import Drop, IcmpError, Result, SiitConfig, Translated, UdpZeroChecksum
from onm.packet.siit.six_to_four import translate_6to4

__all__ = [
    "Drop",
    "IcmpError",
    "Result",
    "SiitConfig",
    "Translated",
    "UdpZeroChecksum",
    "translate_4to6",
    "translate_6to4",
]
