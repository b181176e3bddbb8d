"""RFC 6455 WebSocket frames: the one codec of the storm's client and serve's echo responder.

Why not wsproto's Connection for the frames: one costs 1.7 KiB per connection after a message
(tracemalloc, 2,000 connections) and keeps its buffers and a generator for the connection's
whole life, which alone would break the storm's budget of 2 KiB per idle connection. Here an
idle connection, between two whole frames, holds nothing: `parse` is a pure function of the bytes
received, and a caller keeps only the unparsed tail of a partial frame. The tests check this
codec against wsproto both ways (frames we encode are decoded by wsproto, and wsproto's by us).

Facts from RFC 6455 this module relies on:
- Frame header (5.2): byte 0 = FIN | RSV1-3 | opcode; byte 1 = MASK | 7-bit length; length 126
  means a 16-bit length follows, 127 a 64-bit one; then a 4-byte masking key when MASK is set.
- Every client-to-server frame is masked with a fresh unpredictable key; no server-to-client
  frame is (5.1, 5.3). A peer that breaks this is closed with 1002 (protocol error).
- Control frames (close 0x8, ping 0x9, pong 0xA) carry at most 125 bytes and are never
  fragmented (5.5). A ping is answered by a pong with the same payload (5.5.2).
- A close frame's payload, when present, starts with a 2-byte status code (7.4); 1000 is a
  normal close, 1001 going away, 1002 protocol error, 1009 message too big.
- The server proves the handshake with Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (4.2.2).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPS = (OP_CONT, OP_TEXT, OP_BINARY)
CONTROL_OPS = (OP_CLOSE, OP_PING, OP_PONG)
NORMAL, GOING_AWAY, PROTOCOL_ERROR, TOO_BIG = 1000, 1001, 1002, 1009
NO_STATUS = 1005  # "no status code was present" (7.4.1): never sent on the wire
# Bytes of one frame's payload that serve and the storm accept (and hold while it is partial);
# past it the peer gets close 1009 (message too big, 7.4.1). RFC 6455 allows up to 2**63 bytes a
# frame (a 64-bit length), so the bound is ours: a hostile length makes a process hold at most
# 1 MiB per connection, not gigabytes. A larger --message-size is refused with 1009.
MAX_PAYLOAD = 1024 * 1024


class FrameError(Exception):
    """The peer broke RFC 6455; `code` is the close code to answer with."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


def new_key() -> bytes:
    """A client's Sec-WebSocket-Key: 16 random bytes, base64 (4.1)."""
    return base64.b64encode(os.urandom(16))


def accept_token(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + GUID).digest())


def mask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the 4-byte `key` repeated (5.3): one big-int XOR, no per-byte loop."""
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def encode(opcode: int, payload: bytes, *, masked: bool, fin: bool = True) -> bytes:
    """One frame. Masked (the client side) with a fresh os.urandom key per frame."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    m = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, m | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if masked:
        key = os.urandom(4)
        return head + key + mask(payload, key)
    return head + payload


def close_payload(code: int) -> bytes:
    return b"" if code == NO_STATUS else struct.pack("!H", code)


def close_code(payload: bytes) -> int:
    """The status code of a close frame's payload (1005 when it carries none)."""
    if len(payload) >= 2:
        return struct.unpack_from("!H", payload)[0]
    if payload:
        raise FrameError(PROTOCOL_ERROR, "close frame with a 1-byte payload")
    return NO_STATUS


def parse(buf: bytes, pos: int, *, masked: bool, max_payload: int = MAX_PAYLOAD):
    """The frame starting at `buf[pos]`: (fin, opcode, payload unmasked, next pos), or None when
    it is not complete yet. `masked`: whether this direction's frames must be masked.
    FrameError for a frame RFC 6455 forbids."""
    avail = len(buf) - pos
    if avail < 2:
        return None
    b0, b1 = buf[pos], buf[pos + 1]
    if b0 & 0x70:
        raise FrameError(PROTOCOL_ERROR, "RSV bits set without a negotiated extension")
    opcode = b0 & 0x0F
    fin = bool(b0 & 0x80)
    if opcode not in DATA_OPS and opcode not in CONTROL_OPS:
        raise FrameError(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
    if bool(b1 & 0x80) != masked:
        raise FrameError(PROTOCOL_ERROR, "masked server frame" if not masked else "unmasked client frame")
    n = b1 & 0x7F
    at = pos + 2
    if n == 126:
        if avail < 4:
            return None
        n = struct.unpack_from("!H", buf, at)[0]
        at += 2
    elif n == 127:
        if avail < 10:
            return None
        n = struct.unpack_from("!Q", buf, at)[0]
        at += 8
    if opcode in CONTROL_OPS and (n > 125 or not fin):
        raise FrameError(PROTOCOL_ERROR, "control frame longer than 125 bytes or fragmented")
    if n > max_payload:
        raise FrameError(TOO_BIG, f"frame of {n} bytes (at most {max_payload})")
    if masked:
        key = buf[at:at + 4]
        at += 4
    end = at + n
    if end > len(buf):
        return None
    payload = bytes(buf[at:end])
    if masked:
        payload = mask(payload, bytes(key))
    return fin, opcode, payload, end
