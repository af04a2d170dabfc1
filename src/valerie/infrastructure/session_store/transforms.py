"""Byte transforms between the codec and the backend: `transforms=[...]` on every store.

On a write the codec's bytes go through each transform in order, on a read back through them in
reverse order. A transform marks what it wrote with a tag of its own, and `decode` returns
bytes without its tag unchanged: values written before the transform was added still read, and
a transform can skip values it would not improve (`Compression` leaves small ones as they are).
Versions are hashes of the bytes as stored, after every transform.

Encryption fits the same seam: its tag would carry a key id, so that keys can rotate (values
under an old key still decode) and a later rewrite-on-read can move them to the new key.
"""

from __future__ import annotations

import zlib
from typing import Final, Protocol, runtime_checkable

from .errors import ConfigurationError, CorruptedSessionError
from .validation import describe


@runtime_checkable
class Transform(Protocol):
    """Turns stored bytes into other bytes and back (compression, encryption)."""

    def encode(self, data: bytes) -> bytes:
        """Return what to store for `data` (tagged, or `data` itself to leave it as is)."""
        ...

    def decode(self, data: bytes) -> bytes:
        """Undo `encode`; return bytes that do not carry this transform's tag unchanged.

        Raises:
            CorruptedSessionError: The bytes carry the tag but cannot be decoded.
        """
        ...


class Compression:
    r"""zlib compression (standard library) of values of at least `min_size` bytes.

    A compressed value is `b"\x00z1"` followed by zlib's output; JSON never starts with a NUL
    byte, so an uncompressed value is never mistaken for a compressed one.

    Args:
        level: zlib's level, 1 (fastest) to 9 (smallest); 6 by default.
        min_size: Values shorter than this are stored as they are (compressing a small JSON
            document saves little and costs time).
        max_size: Largest decompressed size accepted, so that a hostile value cannot exhaust
            memory; 512 MiB (Redis's largest string) by default.

    Raises:
        ConfigurationError: An argument is out of range.
    """

    TAG: Final = b"\x00z1"

    __slots__ = ("level", "max_size", "min_size")

    def __init__(self, level: int = 6, *, min_size: int = 256, max_size: int = 512 << 20) -> None:
        if type(level) is not int or not 1 <= level <= 9:
            raise ConfigurationError(
                f"level must be an int from 1 to 9, got {describe(level)}; pass e.g. level=6"
            )
        for name, value in (("min_size", min_size), ("max_size", max_size)):
            if type(value) is not int or value < 0:
                raise ConfigurationError(
                    f"{name} must be an int >= 0 (bytes), got {describe(value)}"
                )
        self.level = level
        self.min_size = min_size
        self.max_size = max_size

    def __repr__(self) -> str:
        return f"Compression(level={self.level}, min_size={self.min_size})"

    def encode(self, data: bytes) -> bytes:
        """Return `data` compressed and tagged, or as it is if shorter than `min_size`."""
        if len(data) < self.min_size:
            return data
        return self.TAG + zlib.compress(data, self.level)

    def decode(self, data: bytes) -> bytes:
        """Return `data` decompressed if it carries the tag, else unchanged.

        Raises:
            CorruptedSessionError: A tagged value is not valid zlib data, or would exceed
                `max_size`; it was left in place.
        """
        if not data.startswith(self.TAG):
            return data
        inflater = zlib.decompressobj()
        try:
            plain = inflater.decompress(memoryview(data)[len(self.TAG) :], self.max_size)
        except zlib.error as error:
            raise CorruptedSessionError(
                f"a stored session is tagged as compressed but is not valid zlib data ({error}); "
                "it was left in place: inspect it, or delete the session to start over"
            ) from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise CorruptedSessionError(
                f"a stored session decompresses to more than max_size ({self.max_size} bytes) "
                "or is truncated; it was left in place: raise max_size if it is genuine, or "
                "delete the session"
            )
        return plain
