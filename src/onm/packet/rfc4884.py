"""RFC 4884 multi-part ICMP messages: where an error's original datagram ends and its extension
structure begins, and how the two are laid out again in a message of bounded size.

Theory of operation (RFC 4884 section 4): a non-zero length attribute gives the size of the
"original datagram" field in words (32-bit in ICMPv4, 64-bit in ICMPv6); what follows it is the
extension structure. With an extension the field is zero padded to a whole word and to at least
128 octets. An ICMP error has a size limit (576 octets in IPv4, RFC 1812 section 4.3.2.3; 1280 in
IPv6, RFC 4443 section 2.4 (c)), so when the two parts do not fit the quoted datagram gives way
first, down to the 128 octets; an extension that does not fit beside those is left out whole and
the length attribute is zero: a cut extension would no longer match its own checksum and lengths
(RFC 4884 section 7), and the quote is what older receivers rely on (RFC 4884 section 5).
"""

from __future__ import annotations

from typing import Final

MIN_ORIGINAL: Final = 128
"""RFC 4884 section 4: with an extension, the original datagram field is at least 128 octets."""
MAX_WORDS: Final = 0xFF
"""RFC 4884 section 4: the length attribute is 8 bits."""
V4_WORD: Final = 4
"""RFC 4884 section 4: ICMPv4 counts 32-bit words."""
V6_WORD: Final = 8
"""RFC 4884 section 4: ICMPv6 counts 64-bit words."""


def split(body: bytes, words: int, unit: int) -> tuple[bytes, bytes]:
    """The quoted datagram and the extension after it, from a length attribute of `words`
    `unit`-octet words. Zero, or a length reaching the end of `body`, means no extension."""
    if not words:
        return body, b""
    return body[: words * unit], body[words * unit :]


def layout(datagram: bytes, extension: bytes, unit: int, room: int) -> tuple[bytes, int]:
    """The body of an error (original datagram field, then the extension) in at most `room`
    octets, and its length attribute in `unit`-octet words (0: no extension)."""
    if extension:
        limit = min(room - len(extension), MAX_WORDS * unit)
        limit -= limit % unit
        if limit >= MIN_ORIGINAL:
            quoted = datagram[:limit]
            quoted += bytes(max(MIN_ORIGINAL - len(quoted), -len(quoted) % unit))
            return quoted + extension, len(quoted) // unit
    return datagram[:room], 0
