"""Exports of a mix (issue 14): EasyLM JSONL read back as EasyLM's TextProcessor reads it, packed uint16 rows
reassembled from tokens.bin + index.npy, both in the mix's order; bad options and folders refused by name."""

import base64
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.mix.config import parse_mix
from lvm_data.mix.export import DEFAULT_ID, ExportConfig, ExportError, export_mix, resolve_ids, with_specials
from pipelines.mix import run_mix
from tests.mix.outputs import CODEBOOK, fake_output


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    """Three parts (1-, 2- and 3-image sentences; by weight and by epochs, repeated and subsampled) in a few train
    shards and a validation split."""
    root = tmp_path_factory.mktemp("export")
    a = fake_output(root / "a", "alpha", 120, n_images=1, seed=1)
    b = fake_output(root / "b", "beta", 80, n_images=2, seed=2)
    c = fake_output(root / "c", "gamma", 60, n_images=3, seed=3)
    config = parse_mix(
        {
            "name": "export-test",
            "output": str(root / "mix"),
            "seed": 3,
            "validation": 0.1,
            "shard_bytes": 800,
            "parts": [
                {"name": "a", "inputs": [a], "weight": 0.3},
                {"name": "b", "inputs": [b], "epochs": 1.5},
                {"name": "c", "inputs": [c], "epochs": 0.5},
            ],
        }
    )
    run_mix(config, None, [])
    return root / "mix"


def mix_sentences(mix: Path, split: str) -> list[list[int]]:
    """Every sentence's codes, read with pyarrow in file order: the mix's order."""
    files = sorted((mix / split).glob("part-*.parquet"))
    return [codes for f in files for codes in pq.read_table(f, columns=["tokens"])["tokens"].to_pylist()]


def easylm_read(path: Path) -> list[list[int]]:
    """As EasyLM's TextProcessor reads a line's `tokens` field."""
    return [
        np.frombuffer(base64.b64decode(json.loads(line)["tokens"]), dtype="i4").tolist()
        for line in path.read_text().splitlines()
    ]


def test_easylm_export_reads_back_every_sentence_in_order(mix, tmp_path):
    record = export_mix(ExportConfig(str(mix), str(tmp_path / "easylm")))
    assert set(record["splits"]) == {"train", "validation"}
    for split in ("train", "validation"):
        shards = sorted(p.stem for p in (mix / split).glob("part-*.parquet"))
        files = sorted((tmp_path / "easylm" / split).glob("part-*.jsonl"))
        assert [f.stem for f in files] == shards  # one JSONL file per mix shard, same number
        expected = mix_sentences(mix, split)
        assert [s for f in files for s in easylm_read(f)] == expected
        assert record["splits"][split]["sentences"] == len(expected)
        assert record["splits"][split]["codes"] == record["splits"][split]["tokens"] == sum(map(len, expected))
    assert len(list((mix / "train").glob("part-*.parquet"))) >= 3
    written = json.loads((tmp_path / "easylm" / "export.json").read_text())
    assert written["format"] == "easylm-jsonl" and written["bos"] is None and written["eos"] is None
    assert written["codebook_size"] == CODEBOOK and written["tokenizer_fingerprint"] == "fp-test"


@pytest.mark.parametrize(
    "bos,eos,want",
    [(DEFAULT_ID, DEFAULT_ID, (CODEBOOK, CODEBOOK + 1)), (1000, 70, (1000, 70)), (DEFAULT_ID, None, (CODEBOOK, None))],
)
def test_easylm_bos_eos_at_the_ends(mix, tmp_path, bos, eos, want):
    export_mix(ExportConfig(str(mix), str(tmp_path), bos=bos, eos=eos))
    got = [s for f in sorted((tmp_path / "train").glob("*.jsonl")) for s in easylm_read(f)]
    expected = [[want[0], *codes] + ([want[1]] if want[1] is not None else []) for codes in mix_sentences(mix, "train")]
    assert got == expected


@pytest.mark.parametrize("length", [7, 4096])
def test_packed_rows_reassemble_to_the_mix(mix, tmp_path, length):
    record = export_mix(ExportConfig(str(mix), str(tmp_path), "packed", length=length))
    for split in ("train", "validation"):
        meta = json.loads((tmp_path / split / "meta.json").read_text())
        bos, eos, pad = CODEBOOK, CODEBOOK + 1, CODEBOOK + 2
        assert (meta["bos"], meta["eos"], meta["pad"], meta["L"]) == (bos, eos, pad, length)
        rows = np.fromfile(tmp_path / split / "tokens.bin", dtype="<u2").reshape(-1, length)  # (rows, L)
        index = np.load(tmp_path / split / "index.npy")  # (sentences + 1,) int64
        expected = mix_sentences(mix, split)
        assert rows.shape == (meta["rows"], length) and index.shape == (len(expected) + 1,)
        flat = rows.ravel()
        got = [flat[index[i] : index[i + 1]].tolist() for i in range(len(expected))]
        assert got == [[bos, *codes, eos] for codes in expected]
        assert index[-1] == meta["tokens"] and meta["pad_tokens"] == rows.size - index[-1] < length
        assert (flat[index[-1] :] == pad).all()
        assert meta["sentences"] == len(expected) and meta["codes"] == sum(map(len, expected))
        assert record["splits"][split]["rows"] == meta["rows"]


def test_with_specials_on_a_sliced_batch():
    import pyarrow as pa

    tokens = pa.array([[1, 2], [3], [], [4, 5, 6]], pa.list_(pa.uint16())).slice(1)
    flat, offsets = with_specials(tokens, 9, 8, "<u2")
    assert flat.tolist() == [9, 3, 8, 9, 8, 9, 4, 5, 6, 8] and offsets.tolist() == [0, 3, 5, 10]
    flat, offsets = with_specials(tokens, None, None, "<i4")
    assert flat.tolist() == [3, 4, 5, 6] and offsets.tolist() == [0, 1, 1, 4]


def test_a_new_export_replaces_an_earlier_one(mix, tmp_path):
    export_mix(ExportConfig(str(mix), str(tmp_path)))
    export_mix(ExportConfig(str(mix), str(tmp_path), "packed", length=16))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "export.json",
        "train/index.npy",
        "train/meta.json",
        "train/tokens.bin",
        "validation/index.npy",
        "validation/meta.json",
        "validation/tokens.bin",
    ]


@pytest.mark.parametrize(
    "options,words",
    [
        ({"bos": 5}, ["--bos 5", "codebook", f">= {CODEBOOK}"]),
        ({"format": "packed", "eos": 3}, ["--eos 3", f">= {CODEBOOK}"]),
        ({"format": "packed", "length": 1}, ["--length 1", "at least 2"]),
        ({"format": "packed", "bos": 70000}, ["--bos 70000", "uint16"]),
        ({"pad": DEFAULT_ID}, ["--pad", "--format packed"]),
        ({"length": 64}, ["--length", "--format packed"]),
        ({"bos": 100, "eos": 100}, ["must differ"]),
        ({"format": "jsonl"}, ["--format 'jsonl'", "easylm, packed"]),
    ],
)
def test_bad_options_are_refused_by_name(mix, tmp_path, options, words):
    with pytest.raises(ExportError) as err:
        export_mix(ExportConfig(str(mix), str(tmp_path / "dest"), **options))
    for word in words:
        assert word in str(err.value)
    assert not (tmp_path / "dest").exists()


def test_a_codebook_too_large_for_uint16_is_refused():
    with pytest.raises(ExportError, match="uint16 ids for BOS, EOS and PAD.*--format easylm"):
        resolve_ids(ExportConfig("m", "d", "packed"), 65534)
    assert resolve_ids(ExportConfig("m", "d", bos=DEFAULT_ID), 65534).bos == 65534  # int32 ids: fine


def test_folders_that_are_not_a_mix_are_refused(mix, tmp_path):
    job = fake_output(tmp_path / "job", "alpha", 4)
    with pytest.raises(ExportError, match=r"job output .*`lvm-data mix"):
        export_mix(ExportConfig(job, str(tmp_path / "dest")))
    with pytest.raises(ExportError, match=rf"{tmp_path / 'empty'}: not a mix output .*lvm-data mix"):
        export_mix(ExportConfig(str(tmp_path / "empty"), str(tmp_path / "dest")))
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="--dest .*holds notes.txt.*new or empty folder"):
        export_mix(ExportConfig(str(mix), str(tmp_path / "dest")))
    with pytest.raises(ExportError, match="--dest .*the mix's own folder"):
        export_mix(ExportConfig(str(mix), str(mix)))
    assert (tmp_path / "dest" / "notes.txt").read_text() == "mine"


def test_cli_export_mix(mix, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main, ["export-mix", str(mix), "--dest", str(tmp_path / "p"), "--format", "packed", "--length", "32"]
    )
    assert result.exit_code == 0, result.output
    assert "packed-uint16 export of mix export-test" in result.output and "rows of 32" in result.output
    result = runner.invoke(main, ["export-mix", str(mix), "--bos", "--eos", "--dest", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    first = easylm_read(tmp_path / "e" / "train" / "part-00000.jsonl")[0]
    assert first[0] == CODEBOOK and first[-1] == CODEBOOK + 1
    result = runner.invoke(main, ["export-mix", str(mix), "--bos", "3", "--dest", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "--bos 3" in result.output
