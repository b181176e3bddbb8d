"""The storm's latency histograms inside its JSON result, and reading them back safely.

Each histogram travels in the `hdrhistogram` package's own encoding (`HdrHistogram.encode()`:
the V2 "compressed" histoblob, base64): any HdrHistogram implementation decodes it, and
`decode_and_add` merges them exactly, bucket by bucket. Values are microseconds, 1 us .. 1 h,
3 significant digits (storm/stats.py).

A result file may come from anywhere (`c10kplan merge` reads what load hosts sent back), so
`checked_decode` bounds every step before the library sees it: the text length, the decoded
length against the header, the inflated size (a zlib stream can inflate ~1000-fold), and the
histogram's range and precision, which must be the storm's own (a header claiming 1 ..
2^63 at 5 digits would allocate tens of MB of counters).
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib

from hdrh.codec import HdrCookieException, HdrHistogramSettingsException, HdrLengthException
from pydantic import BaseModel, ConfigDict

from c10kplan.errors import BadInput
from c10kplan.storm.stats import HIGHEST_US, LOWEST_US, SIGNIFICANT_FIGURES, encode, new_histogram

MAX_ENCODED = 1 << 20  # chars of one encoded histogram (a full 1 us .. 1 h histogram: ~100 KB)
MAX_INFLATED = 4 << 20  # bytes of counters once inflated (the full range holds < 1 MB)
# hdrh/codec.py: ExternalHeader (cookie, length: 2 x uint32, big-endian) before the zlib stream;
# PayloadHeader (cookie, payload_len, normalizing_index_offset, significant_figures: 4 x uint32;
# lowest, highest: 2 x uint64; conversion ratio: double) at the start of the inflated payload.
_EXTERNAL = struct.Struct(">II")
_PAYLOAD = struct.Struct(">IIIIQQd")
KINDS = ("connect", "corrected", "raw")
# What hdrh's decode_and_add raises on an encoding it rejects (hdrh/codec.py, histogram.py):
# its own three exception types; ValueError (ctypes' from_buffer_copy on a short buffer, a bad
# word size or significant figures); IndexError (a value past the counts, "values that do not
# fit"); RuntimeError (counts_len 0); TypeError; zlib.error (a payload that does not inflate).
_DECODE_ERRORS = (HdrCookieException, HdrLengthException, HdrHistogramSettingsException, ValueError,
                  IndexError, RuntimeError, TypeError, zlib.error)


class Histograms(BaseModel):
    """connect: connect() to established; corrected: message latency from the intended send
    (coordinated omission corrected); raw: from the actual send. Each HdrHistogram-encoded."""

    model_config = ConfigDict(frozen=True)

    connect: str = ""
    corrected: str = ""
    raw: str = ""

    @classmethod
    def of(cls, connect, corrected, raw) -> "Histograms":  # HdrHistogram x 3
        return cls(connect=encode(connect), corrected=encode(corrected), raw=encode(raw))


def checked_decode(text: str, where: str = "histogram"):
    """The HdrHistogram `text` encodes; BadInput (one line naming `where`) for anything that is
    not an encoding of a storm histogram."""
    if len(text) > MAX_ENCODED:
        raise BadInput(f"{where}: encoded histogram longer than {MAX_ENCODED} characters")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadInput(f"{where}: not a base64 HdrHistogram encoding") from None
    if len(raw) < _EXTERNAL.size or _EXTERNAL.unpack_from(raw)[1] != len(raw) - _EXTERNAL.size:
        raise BadInput(f"{where}: HdrHistogram encoding with a bad length header")
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw[_EXTERNAL.size:], MAX_INFLATED)
    except zlib.error:
        raise BadInput(f"{where}: HdrHistogram encoding whose payload does not inflate") from None
    if inflater.unconsumed_tail:
        raise BadInput(f"{where}: HdrHistogram payload inflates past {MAX_INFLATED} bytes")
    if len(payload) < _PAYLOAD.size:
        raise BadInput(f"{where}: HdrHistogram payload too short")
    _cookie, _len, _offset, digits, lowest, highest, _ratio = _PAYLOAD.unpack_from(payload)
    if (lowest, highest, digits) != (LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES):
        raise BadInput(f"{where}: histogram of {lowest}..{highest} at {digits} digits, not the storm's "
                       f"{LOWEST_US}..{HIGHEST_US} us at {SIGNIFICANT_FIGURES}")
    hist = new_histogram()
    try:
        hist.decode_and_add(text.encode("ascii"))
    except _DECODE_ERRORS as exc:
        raise BadInput(f"{where}: HdrHistogram encoding the library rejects: {type(exc).__name__}") from None
    return hist


def check_all(parts: list[Histograms], where: list[str]) -> list[dict[str, object]]:
    """checked_decode every histogram of `parts` (part n named `where[n]` in errors); returns
    them decoded, one {kind: HdrHistogram} a part (empty ones left out), for result.combine
    to add without decoding them again."""
    return [{kind: checked_decode(text, f"{name}: histograms.{kind}")
             for kind in KINDS if (text := getattr(part, kind))}
            for part, name in zip(parts, where)]
