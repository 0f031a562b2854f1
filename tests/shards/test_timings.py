"""Time per step: a unit's marker section, the encoder's intervals, their sums and the lines people read."""

import time

from lvm_data.shards.timings import EncoderClock, UnitTimings, staged_timings, timing_lines, timings_total


def test_a_units_timings_add_its_writes_and_the_encoders_interval():
    unit = UnitTimings(read_s=0.5, decode_s=4.0, encode_s=2.0)
    marker = unit.marker(time.perf_counter() - 0.25, (1.5, 3.0))
    assert (marker["read_s"], marker["decode_s"], marker["encode_s"]) == (0.5, 4.0, 2.0)
    assert 0.25 <= marker["write_s"] < 1.0 and marker["wall_s"] >= 0
    assert (marker["encoder_busy_s"], marker["encoder_span_s"]) == (1.5, 3.0)


def test_the_encoder_clock_partitions_time_between_commits_and_never_reports_more_busy_than_span():
    busy = [0.0]
    clock = EncoderClock(2, lambda: busy[0])
    busy[0] = 10.0  # a batch that started before this interval
    first_busy, first_span = clock.interval()
    assert first_busy == first_span < 1.0  # clipped to the device-seconds that passed (2 devices)
    second_busy, second_span = clock.interval()
    assert second_busy == 0.0 and second_span >= 0.0


def test_totals_sum_the_markers_with_the_busy_share_and_name_the_largest_step():
    markers = [
        {
            "timings": {
                "read_s": 1,
                "decode_s": 8,
                "encode_s": 3,
                "write_s": 1,
                "wall_s": 9,
                "encoder_busy_s": 3,
                "encoder_span_s": 10,
            }
        },
        {
            "timings": {
                "read_s": 1,
                "decode_s": 8,
                "encode_s": 3,
                "write_s": 1,
                "wall_s": 9,
                "encoder_busy_s": 3,
                "encoder_span_s": 10,
            }
        },
        {"counts": {}},
    ]  # a unit committed before timings existed
    total = timings_total(markers)
    assert total["units"] == 2 and total["decode_s"] == 16 and total["encoder_busy_share"] == 0.3
    lines = timing_lines(total)
    assert lines[0] == (
        "time per step over 2 units: read 2.0s (8%), decode 16.0s (62%), encode 6.0s (23%), "
        "write 2.0s (8%); largest: decode"
    )
    assert lines[1] == "encoder busy 30% of its time (6.0 of 20.0 device-seconds)"
    assert timings_total([{"counts": {}}]) is None and "not recorded" in timing_lines(None)[0]


def test_a_staged_unit_adds_the_decision_pass_commit_to_its_writes():
    staged = {
        "read_s": 1.0,
        "decode_s": 2.0,
        "encode_s": 3.0,
        "write_s": 0.5,
        "wall_s": 7.0,
        "encoder_busy_s": 3.0,
        "encoder_span_s": 4.0,
    }
    timings = staged_timings(staged, time.perf_counter() - 0.2)()
    assert timings["write_s"] >= 0.7 and timings["encode_s"] == 3.0
    assert staged_timings(None, 0.0) is None
