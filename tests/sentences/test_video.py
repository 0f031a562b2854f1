from lvm_data.outcomes import Reason
from lvm_data.sentences.base import TemplateContext
from lvm_data.sentences.multiview import MultiView
from lvm_data.sentences.sequence import Sequence
from lvm_data.sentences.video import Video

from .fakes import accounted, clip_item, frame, item


def test_every_clip_is_a_sentence_in_frame_order():
    items = [clip_item("a", [(8, 0, 16), (8, 128, 16), (12, 5, 16)]), clip_item("b", [(8, 3, 16)])]
    result = Video().build(items)
    accounted(items, result)
    assert len(result.sentences) == 4 and all(s.n_images == 16 for s in result.sentences)
    first = result.sentences[0]
    assert [f.index for f in first.frames] == list(range(0, 128, 8))
    assert first.params == {"stride": 8, "start": 0, "window": 0} and first.task == "video"
    assert len({s.id for s in result.sentences}) == 4


def test_an_item_without_clips_is_too_short():
    still = item("photo")
    result = Video().build([still])
    accounted([still], result)
    assert result.outcomes["photo"].reason is Reason.TOO_SHORT


def test_clips_longer_than_the_limit_are_split_into_windows():
    items = [clip_item("a", [(1, 0, 20)])]
    result = Video({"task": "kinetics"}, TemplateContext(max_images=8)).build(items)
    assert [s.n_images for s in result.sentences] == [8, 8, 4]
    assert [f.index for s in result.sentences for f in s.frames] == list(range(20))
    assert {s.task for s in result.sentences} == {"kinetics"}


def test_sequence_orders():
    seq = clip_item("s", [(1, 0, 3)], role="sequence", per_frame_roles=("image", "depth"))
    interleaved = Sequence().build([seq]).sentences[0]
    assert [(f.role, f.index) for f in interleaved.frames] == [
        ("image", 0),
        ("depth", 0),
        ("image", 1),
        ("depth", 1),
        ("image", 2),
        ("depth", 2),
    ]
    grouped = Sequence({"order": "grouped"}).build([seq]).sentences[0]
    assert [(f.role, f.index) for f in grouped.frames] == [
        ("image", 0),
        ("image", 1),
        ("image", 2),
        ("depth", 0),
        ("depth", 1),
        ("depth", 2),
    ]


def test_sequence_windows_keep_frames_with_their_annotations():
    seq = clip_item("s", [(1, 0, 8)], role="sequence", per_frame_roles=("image", "depth", "normals"))
    result = Sequence({"order": "grouped"}, TemplateContext(max_images=16)).build([seq])
    assert [s.n_images for s in result.sentences] == [15, 9]  # 5 frames x 3, then 3 frames x 3
    first = result.sentences[0]
    assert [f.role for f in first.frames] == ["image"] * 5 + ["depth"] * 5 + ["normals"] * 5
    assert accounted([seq], result) == {"s": [s.id for s in result.sentences]}


def test_multiview_sentences_and_boundaries():
    views = item("chair", roles=())
    views.frames = [frame(f"/chair/{i}.png", "view", index=i) for i in range(18)]
    single = item("stool", roles=())
    single.frames = [frame("/stool/0.png", "view")]
    result = MultiView({}, TemplateContext(max_images=8)).build([views, single])
    accounted([views, single], result)
    assert [s.n_images for s in result.sentences] == [8, 8, 2]
    assert result.outcomes["stool"].reason is Reason.TOO_SHORT
    odd = item("lamp", roles=())
    odd.frames = [frame(f"/lamp/{i}.png", "view", index=i) for i in range(17)]
    assert [s.n_images for s in MultiView({}, TemplateContext(max_images=8)).build([odd]).sentences] == [8, 8]


def test_max_images_option_sets_the_limit_per_source():
    items = [clip_item("a", [(1, 0, 24)])]
    assert [s.n_images for s in Video({"max_images": 12}).build(items).sentences] == [12, 12]
    assert [s.n_images for s in Video().build(items).sentences] == [16, 8]
