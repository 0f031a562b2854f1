import hashlib

import pytest

from lvm_data.curation.blocklist import BlocklistError, BlocklistSpec, entries_for, load_blocklist
from lvm_data.curation.hashes import phash
from lvm_data.items import ItemRef, Part
from lvm_data.media.samples import photos

from .media import fitted


def ref(key: str, meta: dict | None = None) -> ItemRef:
    return ItemRef("s", key, "u", {"image": Part(key)}, meta or {})


def test_patterns_match_keys_uris_and_urls(tmp_path):
    listed = tmp_path / "patterns.txt"
    listed.write_text("# domains we never use\n*://bad.example.com/*\n\nre:/secret/\n")
    blocklist = load_blocklist(BlocklistSpec(patterns=("*/private/*",), pattern_files=(str(listed),)))
    assert blocklist.patterns == 3
    assert "key '/data/private/a.jpg' matches" in blocklist.match_names(ref("/data/private/a.jpg"))
    assert blocklist.match_names(ref("/data/secret/b.png")) is not None
    tar_member = ref("shard.tar#0001", {"json": {"url": "https://bad.example.com/x.jpg"}})
    assert "url 'https://bad.example.com/x.jpg'" in blocklist.match_names(tar_member)
    assert blocklist.match_names(ref("/data/public/c.jpg", {"url": "https://good.example.com/c.jpg"})) is None


def test_content_hashes_match_file_bytes_and_near_pixels(pictures):
    data = photos("heldout")[0].read_bytes()
    cat = fitted(pictures["chelsea"])
    blocklist = load_blocklist(
        BlocklistSpec(hashes=(f"sha256:{hashlib.sha256(data).hexdigest()}", f"phash:{phash(cat) ^ 0b111:016x}"))
    )
    assert blocklist.needs_bytes
    assert blocklist.match_bytes(data) == "file sha256 is blocklisted"
    assert blocklist.match_bytes(data + b"\0") is None
    assert blocklist.match_pixels(cat) == "phash within 3 bits of a blocklisted hash"
    assert blocklist.match_pixels(fitted(pictures["coffee"])) is None
    strict = load_blocklist(BlocklistSpec(hashes=(f"phash:{phash(cat) ^ 0b111:016x}",), max_distance=2))
    assert strict.match_pixels(cat) is None and not strict.needs_bytes


def test_entries_for_a_file_are_accepted_back(tmp_path):
    path = photos("heldout")[1]
    entries = entries_for(str(path))
    assert [e.split(":")[0] for e in entries] == ["sha256", "md5", "phash", "dhash"]
    listed = tmp_path / "hashes.txt"
    listed.write_text("\n".join(entries) + "\n")
    blocklist = load_blocklist(BlocklistSpec(hash_files=(str(listed),)))
    assert blocklist.match_bytes(path.read_bytes()) is not None


def test_bad_entries_name_the_file_and_line(tmp_path):
    listed = tmp_path / "hashes.txt"
    listed.write_text("md5:0f1b4a59504988622035d850dc0555ac\nphash:123\n")
    with pytest.raises(BlocklistError, match=r"hashes.txt:2: phash hash '123' must be 16 hex digits"):
        load_blocklist(BlocklistSpec(hash_files=(str(listed),)))
    with pytest.raises(BlocklistError, match="KIND:HEX"):
        load_blocklist(BlocklistSpec(hashes=("crc32:00000000",)))
    with pytest.raises(BlocklistError, match="not found"):
        load_blocklist(BlocklistSpec(pattern_files=(str(tmp_path / "missing.txt"),)))
    with pytest.raises(BlocklistError, match="not a valid regular expression"):
        load_blocklist(BlocklistSpec(patterns=("re:(",)))
