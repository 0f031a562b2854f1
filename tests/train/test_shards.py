import json
import shutil

import numpy as np
import pytest

from lvm_data.train.shards import (
    DataError,
    is_validation,
    manifest_tokenizer,
    open_corpus,
    open_mix_validation,
    read_group,
    shard_files,
)

from .synth import mix_rows, random_corpus, sentence_id, write_shard


def test_a_job_folder_a_glob_and_a_file_name_the_same_shards(tmp_path):
    random_corpus(tmp_path, files=2, per_file=6)
    files = shard_files(str(tmp_path))
    assert len(files) == 4 and all("/sentences/source=" in f for f in files)
    assert shard_files(str(tmp_path / "sentences" / "**" / "*.parquet")) == files
    assert shard_files(files[0]) == [files[0]]
    with pytest.raises(DataError, match="no Parquet sentence files"):
        shard_files(str(tmp_path / "nothing"))


def test_corpus_facts_row_groups_and_sources(tmp_path):
    ids = random_corpus(tmp_path, files=2, per_file=6, row_group_size=4, codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    assert (corpus.codebook_size, corpus.tokens_per_image) == (64, 8)
    assert corpus.sources == ["alpha", "beta"]
    assert [g.rows for g in corpus.groups] == [4, 2] * 4
    read = [i for g in corpus.groups for i in read_group(corpus, g).ids]
    assert sorted(read) == sorted(ids["alpha"] + ids["beta"])


def test_files_from_two_tokenizers_are_refused(tmp_path):
    random_corpus(tmp_path, sources=("alpha",))
    rng = np.random.default_rng(0)
    other = tmp_path / "sentences" / "source=zeta" / "part-0.parquet"
    write_shard(other, "zeta", [rng.integers(0, 64, 8)], codebook=64, tpi=8, fingerprint="e" * 64)
    with pytest.raises(DataError, match="source=zeta.*one tokenizer"):
        open_corpus(str(tmp_path))


def test_codes_beyond_the_codebook_and_wrong_lengths_name_the_file(tmp_path):
    path = tmp_path / "sentences" / "source=a" / "part-0.parquet"
    write_shard(path, "a", [np.full(8, 3), np.full(8, 70)], codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    with pytest.raises(DataError, match=f"part-0.parquet row group 0: sentence {sentence_id('a', 1)} holds code 70"):
        read_group(corpus, corpus.groups[0])
    write_shard(path, "a", [np.full(12, 3)], codebook=64, tpi=8)  # 12 codes: not whole images
    with pytest.raises(DataError, match="12 tokens for 1 images of 8"):
        read_group(open_corpus(str(tmp_path)), open_corpus(str(tmp_path)).groups[0])


def test_validation_split_hashes_ids():
    ids = [sentence_id("s", i) for i in range(20000)]
    mask = is_validation(ids, 0.1)
    assert 0.09 < mask.mean() < 0.11
    assert np.array_equal(is_validation(ids[::-1], 0.1), mask[::-1])  # order does not matter
    assert not is_validation(ids, 0.0).any()
    assert (is_validation(ids, 0.2) | ~mask).all()  # a larger fraction keeps the smaller one's rows


def test_tokenizer_uri_comes_from_the_manifest(tmp_path):
    random_corpus(tmp_path, sources=("alpha",))
    assert manifest_tokenizer(str(tmp_path)) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"tokenizer": {"uri": "builtin:x"}}))
    assert manifest_tokenizer(str(tmp_path)) == "builtin:x"
    assert manifest_tokenizer(str(tmp_path / "sentences" / "source=alpha")) == "builtin:x"


def test_a_mix_output_is_its_train_shards_in_order_and_its_validation_split(small_mix, tmp_path):
    corpus = open_corpus(str(small_mix))
    names = sorted(p.name for p in (small_mix / "train").glob("*.parquet"))
    assert corpus.mix and len(names) > 1 and [f.rsplit("/", 1)[1] for f in corpus.files] == names
    assert (corpus.codebook_size, corpus.tokens_per_image) == (64, 4)
    assert [i for g in corpus.groups for i in read_group(corpus, g).ids] == [r[2] for r in mix_rows(small_mix)]
    held_out = open_mix_validation(corpus)
    assert held_out.mix and [f.rsplit("/", 1)[1] for f in held_out.files] == sorted(
        p.name for p in (small_mix / "validation").glob("*.parquet")
    )
    assert {s for g in held_out.groups for s in read_group(held_out, g).sources} == {"alpha", "beta"}
    with pytest.raises(DataError, match="a shard of a mix; point DATA at the mix output folder"):
        open_corpus(str(small_mix / "train"))
    broken = tmp_path / "broken"
    shutil.copytree(small_mix, broken)
    (broken / "train" / names[-1]).unlink()
    with pytest.raises(DataError, match=f"lists {len(names)} train shards but train/ holds {len(names) - 1}"):
        open_corpus(str(broken))


def test_a_mix_without_validation_split_has_no_held_out_set(small_mix, tmp_path):
    mix = tmp_path / "mix"
    shutil.copytree(small_mix, mix)
    manifest = json.loads((mix / "manifest.json").read_text())
    manifest["shards"] = [s for s in manifest["shards"] if s["split"] == "train"]
    (mix / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(mix / "validation")
    assert open_mix_validation(open_corpus(str(mix))) is None
