"""Time per step of a unit (read, decode, encode, write), and how busy the encoder was.

A unit's marker carries `timings`: seconds its refs took to read, its decode tasks took on the decoders
(summed over workers, so it can exceed the unit's wall time), its frames' share of the encoder's batches,
and its commit's file writes; `wall_s` from submit to marker. Beside them, `encoder_busy_s` and
`encoder_span_s`: the device-seconds this process's encoder was encoding, and was there to encode, since
the previous unit this process committed. Those intervals partition each process's run, so summed over
markers they give the run's encoder busy share however many workers wrote them. The manifest sums
the markers (`timings_total`); the audit prints them (`timing_lines`): the largest step is the bottleneck.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STEPS = ("read", "decode", "encode", "write")
FIELDS = tuple(f"{step}_s" for step in STEPS) + ("wall_s", "encoder_busy_s", "encoder_span_s")


@dataclass
class UnitTimings:
    """Seconds accumulated for one unit in flight (threads add to it under its lock)."""

    read_s: float = 0.0
    decode_s: float = 0.0
    encode_s: float = 0.0
    write_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def marker(self, write_started: float, encoder: tuple[float, float]) -> dict:
        """The marker's `timings`: this unit's steps, its writes up to now, and the encoder's interval."""
        now = time.perf_counter()
        busy, span = encoder
        return {
            "read_s": _round(self.read_s),
            "decode_s": _round(self.decode_s),
            "encode_s": _round(self.encode_s),
            "write_s": _round(self.write_s + now - write_started),
            "wall_s": _round(now - self.started),
            "encoder_busy_s": _round(busy),
            "encoder_span_s": _round(span),
        }


class EncoderClock:
    """The encoder's busy and available device-seconds since the last `interval()` (one per executor)."""

    def __init__(self, devices: int, busy: Callable[[], float]):
        self.devices, self._busy = devices, busy
        self._lock = threading.Lock()
        self._last_busy, self._last_time = busy(), time.perf_counter()

    def interval(self) -> tuple[float, float]:
        with self._lock:
            busy, now = self._busy(), time.perf_counter()
            span = (now - self._last_time) * self.devices
            out = (min(busy - self._last_busy, span), span)  # a batch that began before the interval: clipped
            self._last_busy, self._last_time = busy, now
            return out


def staged_timings(staged: dict | None, write_started: float) -> Callable[[], dict] | None:
    """A staged unit's timings (taken when it was staged) with the decision pass's commit added to `write_s`."""
    if staged is None:
        return None
    return lambda: {**staged, "write_s": _round(staged["write_s"] + time.perf_counter() - write_started)}


def timings_total(markers: list[dict]) -> dict | None:
    """The markers' timings summed, with the encoder's busy share; None when no marker has timings."""
    timed = [m["timings"] for m in markers if "timings" in m]
    if not timed:
        return None
    total = {name: _round(sum(t.get(name, 0.0) for t in timed)) for name in FIELDS}
    span = total["encoder_span_s"]
    share = round(total["encoder_busy_s"] / span, 4) if span else 0.0
    return {**total, "units": len(timed), "encoder_busy_share": share}


def timing_lines(total: dict | None) -> list[str]:
    """Lines for people: seconds per step and its share of the steps' sum, and the encoder's busy share."""
    if not total:
        return ["time per step: not recorded (units committed by an lvm-data version before step timings)"]
    steps = sum(total[f"{s}_s"] for s in STEPS) or 1e-9
    parts = ", ".join(f"{s} {total[f'{s}_s']:.1f}s ({total[f'{s}_s'] / steps:.0%})" for s in STEPS)
    bottleneck = max(STEPS, key=lambda s: total[f"{s}_s"])
    return [
        f"time per step over {total['units']} units: {parts}; largest: {bottleneck}",
        f"encoder busy {total['encoder_busy_share']:.0%} of its time ({total['encoder_busy_s']:.1f} of "
        f"{total['encoder_span_s']:.1f} device-seconds)",
    ]


def _round(seconds: float) -> float:
    # microseconds: listing a unit's local refs takes tens of them, and a marker should not say it took none
    return round(seconds, 6)
