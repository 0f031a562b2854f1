import numpy as np
import pyarrow as pa

from lvm_data.audit.hashing import ColumnHashes, confirm_duplicates, contains, hash_strings, repeated_positions

from .handmade import write_table


def test_equal_strings_hash_equal_whatever_the_chunking_and_slicing():
    values = ["a", "", "abc", "abd", None, "x" * 500, "é", "abc"]
    whole = hash_strings(pa.array(values))
    assert whole[2] == whole[7] and whole[1] == whole[4]  # null hashes as ""
    assert len(set(whole.tolist())) == 6
    chunked = hash_strings(pa.chunked_array([pa.array(values[:3]), pa.array(values[3:])]))
    assert (chunked == whole).all()
    assert (hash_strings(pa.array(values)[2:5]) == whole[2:5]).all()
    assert (hash_strings(pa.array(values, pa.large_string())) == whole).all()


def test_equal_length_strings_hash_as_in_a_mixed_chunk():
    ids = [f"{i:032x}" for i in range(50)]
    assert (hash_strings(pa.array(ids)) == hash_strings(pa.array([*ids, "short"]))[:50]).all()


def test_many_distinct_ids_do_not_collide():
    ids = pa.array([f"{i:032x}" for i in range(200_000)])
    assert np.unique(hash_strings(ids)).size == 200_000


def test_contains_and_repeated_positions():
    sorted_set = np.array([2, 5, 9], np.uint64)
    assert contains(sorted_set, np.array([9, 1, 5, 10], np.uint64)).tolist() == [True, False, True, False]
    assert not contains(np.zeros(0, np.uint64), np.array([1], np.uint64)).any()
    assert repeated_positions(np.array([5, 3, 5, 1, 3, 9], np.uint64)).tolist() == [0, 1, 2, 4]


def test_duplicates_are_confirmed_on_the_strings(tmp_path):
    files = []
    for name, ids in (("a", ["x", "y", "z"]), ("b", ["q", "y"])):
        path = str(tmp_path / f"{name}.parquet")
        write_table(path, pa.table({"id": ids}))
        files.append(path)
    real = ColumnHashes("id", files, [hash_strings(pa.array(["x", "y", "z"])), hash_strings(pa.array(["q", "y"]))])
    groups, bytes_read = confirm_duplicates(real)
    assert groups == {"y": [(files[0], 1), (files[1], 1)]} and bytes_read > 0
    # forced hash collisions between different strings are not reported
    collided = ColumnHashes("id", files, [np.array([1, 2, 3], np.uint64), np.array([1, 3], np.uint64)])
    assert confirm_duplicates(collided)[0] == {}
