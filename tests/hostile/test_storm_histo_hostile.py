"""Encoded histograms from a result file are untrusted: each bad one is one BadInput line."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from c10kplan.errors import BadInput
from c10kplan.storm.histo import MAX_ENCODED, checked_decode


def _blob(lowest: int, highest: int, digits: int, payload_extra: bytes = b"") -> str:
    payload = struct.pack(">IIIIQQd", 0x1C849303, 0, 0, digits, lowest, highest, 1.0) + payload_extra
    comp = zlib.compress(payload)
    return base64.b64encode(struct.pack(">II", 0x1C849304, len(comp)) + comp).decode()


@pytest.mark.parametrize("text", [
    "not base64!", "QUJD", "x" * (MAX_ENCODED + 1),
    base64.b64encode(struct.pack(">II", 0x1C849304, 999) + b"abc").decode(),  # length lies
    base64.b64encode(struct.pack(">II", 0x1C849304, 3) + b"abc").decode(),  # not zlib
    _blob(1, 2**62, 5),  # another range: would allocate far more counters
    _blob(1, 3_600_000_000, 3, b"\0" * (5 << 20)),  # inflates past the cap
])
def test_hostile_encodings_are_one_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        checked_decode(text, "r.json")
