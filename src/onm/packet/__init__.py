"""The sans-IO packet core: codecs, checksums, SIIT (RFC 7915) and encapsulation.

Bytes in, bytes or a typed verdict out. Nothing here opens a socket, reads a clock or raises on
bad input bytes: a malformed packet comes back as a `DropReason`.
"""
