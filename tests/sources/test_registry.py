import pytest

from lvm_data.sources.base import Source
from lvm_data.sources.registry import SOURCES, make_source


def test_every_format_maps_to_a_source_class_under_its_own_name():
    assert {"images", "webdataset", "parquet", "hf"} <= set(SOURCES)
    for name, cls in SOURCES.items():
        assert issubclass(cls, Source) and cls.format == name


def test_make_source_builds_by_format():
    src = make_source("web", {"format": "webdataset", "paths": "x.tar", "shard_size": 5})
    assert type(src) is SOURCES["webdataset"] and src.name == "web"


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(ValueError, match="input format 'tfrecord' is not known; use one of .*images"):
        make_source("s", {"format": "tfrecord"})
