import datasets
import pytest
from PIL import Image

from lvm_data.items import ERROR_META
from lvm_data.sources.hf import HFDataset
from lvm_data.sources.listing import SourceError


def png(path, color):
    Image.new("RGB", (8, 8), color).save(path)
    return path


def source(**options):
    return HFDataset("hf", {"format": "hf", "shard_size": 2, **options})


def test_save_to_disk_folder_yields_undecoded_bytes(tmp_path):
    files = [str(png(tmp_path / f"{i}.png", (i * 40, 0, 0))) for i in range(3)]
    data = datasets.Dataset.from_dict({"image": files, "label": [0, 1, 2]}).cast_column("image", datasets.Image())
    data.save_to_disk(str(tmp_path / "saved"))
    src = source(path=str(tmp_path / "saved"), meta_columns=["label"])
    units = src.plan()
    assert [(u.spec, u.n_items) for u in units] == [((0, 2), 2), ((2, 3), 1)]
    refs = [r for u in units for r in src.read(u)]
    assert [r.key for r in refs] == ["train/0", "train/1", "train/2"]
    assert refs[2].meta["label"] == 2
    assert refs[0].parts["image"].data == (tmp_path / "0.png").read_bytes()


def test_dataset_dict_split_and_missing_split(tmp_path):
    files = [str(png(tmp_path / "a.png", "red"))]
    split = datasets.Dataset.from_dict({"image": files}).cast_column("image", datasets.Image())
    datasets.DatasetDict({"validation": split}).save_to_disk(str(tmp_path / "dd"))
    assert source(path=str(tmp_path / "dd"), split="validation").plan()[0].n_items == 1
    with pytest.raises(SourceError, match="has splits validation, not 'train'; set input.split"):
        source(path=str(tmp_path / "dd")).plan()


def test_imagefolder(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "folder" / label).mkdir(parents=True)
        png(tmp_path / "folder" / label / "1.png", "blue")
    src = source(imagefolder=str(tmp_path / "folder"), cache_dir=str(tmp_path / "cache"), meta_columns=["label"])
    refs = [r for u in src.plan() for r in src.read(u)]
    assert len(refs) == 2 and {r.meta["label"] for r in refs} == {0, 1}
    part = refs[0].parts["image"]
    assert part.data is not None or part.uri.endswith("1.png")


def test_missing_column_and_missing_folder(tmp_path):
    datasets.Dataset.from_dict({"text": ["a"]}).save_to_disk(str(tmp_path / "t"))
    with pytest.raises(SourceError, match="has no column 'image'; its columns are text"):
        source(path=str(tmp_path / "t")).plan()
    with pytest.raises(SourceError, match="cannot open Hugging Face dataset"):
        source(path=str(tmp_path / "missing")).plan()


def test_hub_name_offline_says_how_to_make_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    with pytest.raises(SourceError, match=r"save_to_disk\(DIR\)"):
        source(dataset="someone/not-cached-here", cache_dir=str(tmp_path / "cache")).plan()


def test_null_image_cell_is_a_failed_ref(tmp_path):
    data = datasets.Dataset.from_dict({"image": [None]}, features=datasets.Features({"image": datasets.Image()}))
    data.save_to_disk(str(tmp_path / "n"))
    src = source(path=str(tmp_path / "n"))
    (ref,) = list(src.read(src.plan()[0]))
    assert ref.meta[ERROR_META]["reason"] == "empty_file"
