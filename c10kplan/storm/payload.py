"""What the storm sends and what it expects back, byte for byte.

Every message is the same `size` bytes: letters (so rot13 changes them and a mismatch between
the server's protocol and the storm's is visible) ending in a newline (so line-oriented servers
answer each message). The reply stream is the periodic repetition of `expected_reply`:
echo returns the message, rot13 returns it with letters rotated by 13, discard returns nothing.
"""

from __future__ import annotations

PROTOCOLS = ("echo", "rot13", "discard")

_ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ROT13 = bytes.maketrans(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    b"nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)


def make_message(size: int) -> bytes:
    if size < 1:
        raise ValueError("message size must be at least 1 byte")
    body = (_ALPHABET * (size // len(_ALPHABET) + 1))[: size - 1]
    return body + b"\n"


def rot13(data: bytes) -> bytes:
    return data.translate(_ROT13)


def expected_reply(protocol: str, message: bytes) -> bytes:
    """The bytes the server answers one message with (b"" for discard)."""
    if protocol == "echo":
        return message
    if protocol == "rot13":
        return rot13(message)
    if protocol == "discard":
        return b""
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


class ReplyChecker:
    """Compares a received chunk with the periodic expected stream at a given offset."""

    __slots__ = ("period", "_ring")

    def __init__(self, reply: bytes, max_chunk: int) -> None:
        self.period = len(reply)
        if self.period:
            repeat = (max_chunk + self.period) // self.period + 1
            self._ring = reply * repeat
        else:
            self._ring = b""

    def matches(self, offset: int, chunk: bytes | memoryview) -> bool:
        """True when `chunk` equals the expected stream starting `offset` bytes into a reply."""
        if not self.period:
            return not chunk
        return self._ring[offset : offset + len(chunk)] == chunk
