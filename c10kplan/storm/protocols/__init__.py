"""What the storm speaks on each connection: one small interface, one module per protocol.

    stream.py     echo, rot13, discard: raw bytes, replies checked byte for byte
    http.py       HTTP/1.1 keep-alive requests, responses parsed by h11, statuses counted
    websocket.py  RFC 6455: an HTTP upgrade (parsed by h11), then masked frames (c10kplan.rfc6455)

A wire is one object per storm process, shared by all its connections; what it must remember
about one connection lives on that connection's record (`conn.proto`, None while the connection
is idle, so an idle connection costs nothing here). The storm loop (client.py) calls:

- `opening(conn)` when the TCP handshake completes: the bytes to send first (an HTTP request, a
  WebSocket upgrade), or None when the connection is ready at once (`handshake` is False).
- `message()`: the bytes of one scheduled message.
- `received(proc, conn, data, now)` for every read. The wire parses and calls back the storm:
  `proc.reply(conn, ok, now)` once per reply (ok: the right reply), `proc.handshaken(conn, now)`
  when the connection is ready, `proc.out(conn, data)` to send (a pong), `proc.drop(conn, why)`.
- `eof(proc, conn, now)` when the peer closed: the reason the drop is counted under.
- `farewell()`: the bytes of a clean close at the end (a WebSocket close frame), or None.
"""

from __future__ import annotations

from c10kplan.storm.config import StormConfig


def make_wire(cfg: StormConfig, max_read: int = 65536):
    """The wire for cfg.protocol; `max_read`: the most bytes one read hands to `received`."""
    if cfg.protocol == "http":
        from c10kplan.storm.protocols.http import HttpWire

        return HttpWire(cfg)
    if cfg.protocol == "websocket":
        from c10kplan.storm.protocols.websocket import WebSocketWire

        return WebSocketWire(cfg)
    from c10kplan.storm.protocols.stream import StreamWire

    return StreamWire(cfg, max_read)
