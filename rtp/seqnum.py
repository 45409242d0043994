"""Wrap-around arithmetic for RTP's modular counters, all in one place.

RTP sequence numbers are 16-bit and RTP timestamps (and RTCP's compact NTP
times) are 32-bit counters that wrap. Comparing them with ``<`` breaks at the
wrap, so every comparison in this package goes through the helpers here
(RFC 1982 serial-number arithmetic): ``b`` is "after" ``a`` when the forward
distance from ``a`` to ``b`` is less than half the counter range.

``Unwrapper`` turns a stream of wrapped values into an unbounded extended
counter (a plain Python int), picking for every new value the extension
closest to the last one returned; this is what a receiver needs to index
packets that arrive out of order around a wrap.
"""

from __future__ import annotations

SEQ_BITS = 16
TS_BITS = 32
SEQ_MOD = 1 << SEQ_BITS
TS_MOD = 1 << TS_BITS


def wrap_diff(a: int, b: int, bits: int) -> int:
    """Signed distance ``b - a`` on a ``bits``-bit counter, in ``[-2**(bits-1), 2**(bits-1))``.

    Positive when ``b`` is after ``a``. The single exactly-opposite value
    (distance ``2**(bits-1)``) is reported as negative, i.e. "before".
    """
    mod = 1 << bits
    half = mod >> 1
    return ((b - a + half) % mod) - half


def seq_diff(a: int, b: int) -> int:
    """Signed 16-bit distance from sequence number ``a`` to ``b`` (``b - a``)."""
    return wrap_diff(a, b, SEQ_BITS)


def seq_forward(a: int, b: int) -> int:
    """Unsigned forward distance from ``a`` to ``b`` in ``[0, 2**16)`` (RFC 3550 A.1's udelta)."""
    return (b - a) % SEQ_MOD


def seq_lt(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes before ``b`` across the wrap."""
    return seq_diff(a, b) > 0


def seq_add(a: int, n: int) -> int:
    """Sequence number ``n`` steps after ``a`` (``n`` may be negative)."""
    return (a + n) % SEQ_MOD


def ts_diff(a: int, b: int) -> int:
    """Signed 32-bit distance from timestamp ``a`` to ``b`` (``b - a``)."""
    return wrap_diff(a, b, TS_BITS)


def ts_lt(a: int, b: int) -> bool:
    """True when 32-bit timestamp ``a`` comes before ``b`` across the wrap."""
    return ts_diff(a, b) > 0


def ts_add(a: int, n: int) -> int:
    """32-bit timestamp ``n`` ticks after ``a`` (``n`` may be negative)."""
    return (a + n) % TS_MOD


def u32_sub(a: int, b: int) -> int:
    """``a - b`` modulo 2**32 (unsigned elapsed count, e.g. RTCP's A - LSR - DLSR)."""
    return (a - b) % TS_MOD


class Unwrapper:
    """Extend wrapped ``bits``-bit values into an unbounded counter.

    The first value is returned as is; each later value is mapped to the
    extension nearest (by ``wrap_diff``) to the previous *highest* extended
    value, so late packets from before a wrap extend backwards and the
    state only moves forward. Extended values may be negative if a value
    from "before" the very first one arrives.
    """

    def __init__(self, bits: int) -> None:
        if bits < 2:
            raise ValueError(f"an unwrapper needs at least 2 bits, got {bits}")
        self.bits = bits
        self._mod = 1 << bits
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The highest extended value seen so far (None before the first)."""
        return self._highest

    def peek(self, value: int) -> int:
        """The extension ``value`` would get, without changing the state."""
        if not 0 <= value < self._mod:
            raise ValueError(f"value {value} is outside the {self.bits}-bit range")
        if self._highest is None:
            return value
        return self._highest + wrap_diff(self._highest % self._mod, value, self.bits)

    def extend(self, value: int) -> int:
        """Extended counter for ``value``; advances the state if it is newer."""
        ext = self.peek(value)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        return ext
