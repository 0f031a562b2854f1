import pytest

from lvm_data.media.clips import ClipSpec, plan_clips, shortest_video


def test_all_clips_are_non_overlapping_and_inside_the_video():
    spec = ClipSpec(frames=16, strides=(8,))
    clips = plan_clips(1000, 25.0, spec, seed=0, key="v")
    span = spec.span(8)  # 121 frames
    assert len(clips) == (1000 - span) // (16 * 8) + 1
    for clip in clips:
        assert len(clip.indices) == 16 and clip.stride == 8
        assert all(b - a == 8 for a, b in zip(clip.indices, clip.indices[1:], strict=False))
        assert 0 <= clip.indices[0] and clip.indices[-1] < 1000
    for a, b in zip(clips, clips[1:], strict=False):
        assert b.indices[0] > a.indices[-1]


def test_offset_is_seeded_by_seed_and_key_and_never_loses_a_clip():
    spec = ClipSpec(frames=4, strides=(2,))
    starts = {plan_clips(50, 25.0, spec, seed=s, key=k)[0].indices[0] for s in range(5) for k in "abcdef"}
    assert len(starts) > 1  # the grid moves
    assert all(len(plan_clips(50, 25.0, spec, seed=s, key="a")) == (50 - 7) // 8 + 1 for s in range(20))
    assert plan_clips(50, 25.0, spec, seed=3, key="a") == plan_clips(50, 25.0, spec, seed=3, key="a")
    assert plan_clips(50, 25.0, ClipSpec(frames=4, strides=(2,), offset="start"), 3, "a")[0].indices[0] == 0


def test_k_clips_are_a_seeded_subset_of_the_non_overlapping_grid():
    all_clips = plan_clips(2000, 25.0, ClipSpec(frames=16, strides=(8,), offset="start"), 0, "v")
    some = plan_clips(2000, 25.0, ClipSpec(frames=16, strides=(8,), clips=3, offset="start"), 0, "v")
    assert len(some) == 3 and set(some) <= set(all_clips)
    other = plan_clips(2000, 25.0, ClipSpec(frames=16, strides=(8,), clips=3, offset="start"), 1, "v")
    assert other != some
    assert len(plan_clips(130, 25.0, ClipSpec(frames=16, strides=(8,), clips=5), 0, "v")) == 1  # only one fits


def test_each_stride_gets_its_own_clips_and_short_strides_still_fit():
    clips = plan_clips(250, 25.0, ClipSpec(frames=16, strides=(8, 12, 24)), 0, "kinetics-10s")
    assert sum(c.stride == 8 for c in clips) == 2 and sum(c.stride == 12 for c in clips) == 1
    assert {c.stride for c in clips} == {8, 12, 16}  # stride 24 needs 361 frames: LVM takes 249 // 15 = 16
    skipped = plan_clips(250, 25.0, ClipSpec(frames=16, strides=(8, 12, 24), fit="skip"), 0, "kinetics-10s")
    assert {c.stride for c in skipped} == {8, 12}


@pytest.mark.parametrize(
    ("frames", "lvm", "skip"),
    [
        (100, {6: 1}, {}),  # LVM: min(s, 99 // 15) = 6 for every stride; the three give their clips once
        (200, {8: 1, 12: 1, 13: 1}, {8: 1, 12: 1}),
        (1000, {8: 7, 12: 5, 24: 2}, {8: 7, 12: 5, 24: 2}),  # every stride fits: the rule changes nothing
        (15, {}, {}),  # shorter than one clip: too short either way
    ],
)
def test_lvm_stride_fallback_against_its_rule(frames, lvm, skip):
    """LVM's tokenize_video_muse.py samples each stride s at min(s, (T - 1) // 15) for 16-frame clips."""

    def strides(fit):
        counts: dict[int, int] = {}
        for clip in plan_clips(frames, 25.0, ClipSpec(frames=16, strides=(8, 12, 24), offset="start", fit=fit), 0, "v"):
            counts[clip.stride] = counts.get(clip.stride, 0) + 1
            assert clip.indices[-1] < frames and len(clip.indices) == 16
        return counts

    assert strides("lvm") == lvm and strides("skip") == skip


def test_spacing_in_seconds_uses_the_frame_rate():
    clips = plan_clips(300, 30.0, ClipSpec(frames=4, spacing_s=(0.5,)), 0, "v")
    assert clips and all(c.stride == 15 for c in clips)
    with pytest.raises(ValueError, match="frame rate"):
        plan_clips(300, 0.0, ClipSpec(frames=4, spacing_s=(0.5,)), 0, "v")


def test_a_video_shorter_than_one_clip_gets_no_clip():
    spec = ClipSpec(frames=16, strides=(1,))
    assert plan_clips(15, 25.0, spec, 0, "v") == [] and plan_clips(1, 25.0, spec, 0, "v") == []
    assert len(plan_clips(16, 25.0, spec, 0, "v")) == 1
    assert shortest_video(ClipSpec(frames=16, strides=(8, 12)), 25.0) == 16  # LVM's fit: any 16 frames
    assert shortest_video(ClipSpec(frames=16, strides=(8, 12), fit="skip"), 25.0) == 121


def test_max_clips_caps_all_and_options_parse():
    assert len(plan_clips(100_000, 25.0, ClipSpec(frames=2, strides=(1,), max_clips=5), 0, "v")) == 5
    spec = ClipSpec.from_options({"frames": 8, "stride": 4, "clips": 2, "offset": "start"})
    assert spec == ClipSpec(frames=8, strides=(4,), clips=2, offset="start")
    assert ClipSpec.from_options({}) == ClipSpec()
    with pytest.raises(ValueError, match="offset"):
        ClipSpec(offset="middle")
    with pytest.raises(ValueError, match="strides"):
        ClipSpec(strides=(0,))
