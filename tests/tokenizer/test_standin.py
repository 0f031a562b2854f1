"""The device stand-in: a queue of batches that costs batch / RATE seconds of waiting, no CPU, and codes that
are deterministic, in range and differ between images."""

import numpy as np
import pytest

from lvm_data.tokenizer import load
from lvm_data.tokenizer.standin import CODEBOOK, StandInError, StandInTokenizer


class FakeTime:
    def __init__(self):
        self.now, self.slept = 100.0, []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)


def test_batches_queue_on_the_device_and_results_wait_for_them():
    t = FakeTime()
    device = StandInTokenizer("standin:100", clock=t.clock, sleep=t.sleep)
    first, second = device.encode_start(images(10)), device.encode_start(images(20, seed=1))
    assert t.slept == []  # starting is free: the work is queued behind what came before
    first.result()
    second.result()
    assert t.slept == [0.1, 0.2]  # 10 images at 100/s, then 20 more queued behind them
    t.now += 5.0  # the device went idle meanwhile: the next batch starts now, not at the old end
    device.encode(images(50))
    assert t.slept[-1] == 0.5


def test_codes_are_deterministic_in_range_and_follow_the_pixels():
    device = load("standin:1e6")
    batch = images(4)
    codes = device.encode(batch)
    assert codes.dtype == np.uint16 and codes.shape == (4, 256) and int(codes.max()) < CODEBOOK
    assert np.array_equal(codes, load("standin:5e5").encode(batch))  # the rate changes time, never codes
    assert device.fingerprint == load("standin:7").fingerprint
    assert len({c.tobytes() for c in codes}) == 4
    mosaic = device.decode(codes)  # each cell painted with its code's colour: close to the centre pixel
    assert mosaic.shape == batch.shape
    assert np.abs(mosaic[:, 8, 8].astype(int) - batch[:, 8, 8].astype(int)).max() <= 32


@pytest.mark.parametrize("uri", ["standin:", "standin:fast", "standin:0", "standin:-3"])
def test_a_stand_in_needs_a_positive_rate(uri):
    with pytest.raises(StandInError, match="standin:RATE"):
        load(uri)
