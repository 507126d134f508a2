"""The hash functions selection is built on, one place for both kinds of pool.

- `digest64`: BLAKE2b, for what the manager and agents compute from names (rendezvous weights,
  a Maglev table's permutations). Never Python's `hash`: every replica and run must agree.
- `jhash_words`: the Linux kernel's jhash2 (Bob Jenkins' lookup3 `hashword`, as in
  include/linux/jhash.h), for what is computed per flow: the eBPF datapath computes the same
  function in the kernel, so a flow gets one gateway whichever datapath looks it up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

JHASH_INITVAL: Final = 0xDEADBEEF
"""lookup3's (and the kernel's) arbitrary initial value."""
_MASK: Final = 0xFFFFFFFF


def digest64(*parts: str) -> int:
    """A 64-bit digest of `parts` (joined by NUL, so ("ab", "c") differs from ("a", "bc"))."""
    text = "\x00".join(parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _rol(word: int, shift: int) -> int:
    return ((word << shift) | (word >> (32 - shift))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = ((a - c) & _MASK) ^ _rol(c, 4)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rol(a, 6)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rol(b, 8)
    b = (b + a) & _MASK
    a = ((a - c) & _MASK) ^ _rol(c, 16)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rol(a, 19)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rol(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c = ((c ^ b) - _rol(b, 14)) & _MASK
    a = ((a ^ c) - _rol(c, 11)) & _MASK
    b = ((b ^ a) - _rol(a, 25)) & _MASK
    c = ((c ^ b) - _rol(b, 16)) & _MASK
    a = ((a ^ c) - _rol(c, 4)) & _MASK
    b = ((b ^ a) - _rol(a, 14)) & _MASK
    return ((c ^ b) - _rol(b, 24)) & _MASK


def jhash_words(words: Sequence[int], initval: int = 0) -> int:
    """jhash2(words, len(words), initval): 32-bit words in, a 32-bit hash out."""
    a = b = c = (JHASH_INITVAL + (len(words) << 2) + initval) & _MASK
    rest = list(words)
    while len(rest) > 3:
        a, b, c = (a + rest[0]) & _MASK, (b + rest[1]) & _MASK, (c + rest[2]) & _MASK
        a, b, c = _mix(a, b, c)
        rest = rest[3:]
    if not rest:
        return c
    padded = rest + [0] * (3 - len(rest))
    a, b, c = (a + padded[0]) & _MASK, (b + padded[1]) & _MASK, (c + padded[2]) & _MASK
    return _final(a, b, c)
