"""`lvm-data mix` end to end on synthetic job outputs: shares asked vs achieved (globally, per shard, in every
prefix), determinism across worker counts, every sentence in exactly one split, resume, refusals."""

import hashlib
import json
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.mix.config import MixConfigError, parse_mix, parse_mix_text
from lvm_data.mix.plan import interleave
from pipelines.mix import run_mix

from .outputs import fake_output


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    return {
        "laion": fake_output(root / "laion", "laion", 600, seed=1),
        "coco": fake_output(root / "coco", "coco", 200, n_images=2, seed=2),
        "video": fake_output(root / "video", "video", 60, n_images=8, seed=3),
    }


def mix_config(inputs, out, **top):
    # weights that force subsampling (laion, video) and repetition (coco: ~1.8 epochs)
    return parse_mix(
        {
            "name": "m",
            "output": str(out),
            "validation": 0.05,
            "shard_bytes": 8000,
            **top,
            "parts": [
                {"name": "laion", "inputs": [inputs["laion"]], "weight": 0.3},
                {"name": "coco", "inputs": [inputs["coco"]], "weight": 0.5},
                {"name": "video", "inputs": [inputs["video"]], "weight": 0.2},
            ],
        }
    )


def shard_bytes(out):
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*.parquet"))
    }


def train_rows(out):
    rows = []
    for path in sorted((out / "train").glob("part-*.parquet")):
        rows += pq.read_table(path, columns=["part", "sentence_id", "copy", "tokens"]).to_pylist()
    return rows


@pytest.fixture(scope="module")
def mixed(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "out"
    return out, run_mix(mix_config(inputs, out), None, [])


def test_shares_asked_are_held_globally_and_in_every_shard(mixed):
    out, manifest = mixed
    parts = manifest["parts"]
    assert {n: p["asked_share"] for n, p in parts.items()} == {"laion": 0.3, "coco": 0.5, "video": 0.2}
    assert parts["coco"]["epochs"] > 1 > parts["laion"]["epochs"] and parts["video"]["epochs"] < 1
    assert parts["coco"]["repeated_sentences"] > 0
    assert manifest["worst_global_share_error"] < 0.005  # exact to one sentence of each part
    train = [s for s in manifest["shards"] if s["split"] == "train"]
    assert len(train) >= 2 and manifest["worst_shard_share_error"] < 0.02  # each shard: a part's rows +-1


def test_every_prefix_of_a_shard_stays_close_to_its_shares():
    rows = [(p, i, t, (p, i)) for p, t, n in ((0, 4, 300), (1, 8, 100), (2, 32, 20)) for i in range(n)]
    order = interleave(rows)
    tokens = {0: 4, 1: 8, 2: 32}
    total = Counter()
    for k, (p, _i) in enumerate(order, 1):
        total[p] += tokens[p]
        done = sum(total.values())
        for q, share in ((0, 1200 / 2640), (1, 800 / 2640), (2, 640 / 2640)):
            assert abs(total[q] - share * done) <= 32 + 1e-9, (k, q)  # within one sentence of the largest part


def test_every_input_sentence_ends_in_exactly_one_split(mixed, inputs):
    out, manifest = mixed
    validation = Counter()
    for path in (out / "validation").glob("*.parquet"):
        validation.update(r["part"] for r in pq.read_table(path, columns=["part"]).to_pylist())
    for name, part in manifest["parts"].items():
        assert part["input_sentences"] == part["train_sentences"] + part["validation_sentences"] + sum(
            part["removed"].values()
        )
        assert validation[name] == part["validation_sentences"]
    rows = train_rows(out)
    train_ids = {r["sentence_id"] for r in rows}
    val_ids = {
        r["sentence_id"]
        for p in (out / "validation").glob("*.parquet")
        for r in pq.read_table(p, columns=["sentence_id"]).to_pylist()
    }
    assert not train_ids & val_ids
    assert len(rows) == sum(p["mix_sentences"] for p in manifest["parts"].values())


def test_the_same_mix_is_byte_identical_with_two_worker_processes_and_resumes_after_a_kill(mixed, inputs, tmp_path):
    out, _ = mixed
    other = tmp_path / "two"
    run_mix(mix_config(inputs, other), None, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert shard_bytes(other) == shard_bytes(out)
    (other / "train" / "part-00001.parquet").unlink()  # a kill before this shard's marker: file and marker gone
    (other / "shards" / "train-00001.json").unlink()
    kept = (other / "train" / "part-00000.parquet").stat().st_mtime_ns
    run_mix(mix_config(inputs, other), None, [])
    assert shard_bytes(other) == shard_bytes(out)
    assert (other / "train" / "part-00000.parquet").stat().st_mtime_ns == kept  # committed shards are not rewritten


def test_the_split_is_stable_when_parts_are_added_or_removed(mixed, inputs, tmp_path):
    out, _ = mixed
    alone = run_mix(
        parse_mix(
            {
                "name": "m",
                "output": str(tmp_path / "alone"),
                "validation": 0.05,
                "parts": [{"name": "laion", "inputs": [inputs["laion"]], "epochs": 1}],
            }
        ),
        None,
        [],
    )
    assert (
        alone["parts"]["laion"]["validation_sentences"]
        == 23
        == json.loads((out / "manifest.json").read_text())["parts"]["laion"]["validation_sentences"]
    )


def test_dedup_keeps_one_of_identical_sentences_across_parts_and_counts_the_others(inputs, tmp_path):
    shutil.copytree(inputs["laion"], tmp_path / "copy")  # another output holding the same sentences
    manifest = run_mix(
        parse_mix(
            {
                "name": "d",
                "output": str(tmp_path / "d"),
                "dedup": True,
                "parts": [
                    {"name": "first", "inputs": [inputs["laion"]], "epochs": 1},
                    {"name": "again", "inputs": [str(tmp_path / "copy")], "epochs": 1},
                    {"name": "coco", "inputs": [inputs["coco"]], "epochs": 1},
                ],
            }
        ),
        None,
        [],
    )
    parts = manifest["parts"]
    assert parts["again"]["removed"] == {"duplicate_sentence": 600} and parts["again"]["mix_sentences"] == 0
    assert parts["first"]["removed"] == {} and parts["first"]["mix_sentences"] == 600


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({"name": "m", "output": "o", "parts": [{"name": "a", "inputs": ["x"]}]}, "needs exactly one of weight"),
        (
            {
                "name": "m",
                "output": "o",
                "parts": [
                    {"name": "a", "inputs": ["x"], "weight": 0.6},
                    {"name": "b", "inputs": ["y"], "epochs": 1},
                    {"name": "c", "inputs": ["z"], "weight": 0.5},
                ],
            },
            "sum to 1.1",
        ),
        ({"name": "m", "output": "x/mix", "parts": [{"name": "a", "inputs": ["x"], "epochs": 1}]}, "inside input x"),
        (
            {"name": "m", "output": "o", "parts": [{"name": "a", "inputs": ["x"], "epochs": 1, "wieght": 1}]},
            "parts[0].wieght is not a mix field",
        ),
        (
            {"name": "m", "output": "o", "validation": 1.5, "parts": [{"name": "a", "inputs": ["x"], "epochs": 1}]},
            "validation must be < 1",
        ),
    ],
)
def test_bad_mix_files_are_refused_with_the_field(mix, message):
    with pytest.raises(MixConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_mix(mix)


def test_inputs_of_two_tokenizers_are_refused(inputs, tmp_path):
    other = fake_output(tmp_path / "other", "x", 10, fingerprint="another")
    text = (
        f"name: m\noutput: {tmp_path / 'o'}\nparts:\n  - {{name: a, inputs: [{inputs['laion']}], epochs: 1}}\n"
        f"  - {{name: b, inputs: [{other}], epochs: 1}}\n"
    )
    (tmp_path / "mix.yaml").write_text(text)
    result = CliRunner().invoke(main, ["mix", str(tmp_path / "mix.yaml")])
    assert result.exit_code == 2 and "different tokenizers" in result.output
    assert parse_mix_text(text).parts[1].name == "b"


def test_the_command_prints_shares_and_writes_a_manifest(inputs, tmp_path):
    (tmp_path / "mix.yaml").write_text(
        f"name: m\noutput: {tmp_path / 'o'}\nparts:\n  - {{name: laion, inputs: [{inputs['laion']}], weight: 0.5}}\n"
        f"  - {{name: coco, inputs: [{inputs['coco']}], weight: 0.5}}\n"
    )
    result = CliRunner().invoke(main, ["mix", str(tmp_path / "mix.yaml")])
    assert result.exit_code == 0, result.output
    assert "laion" in result.output and "worst share error" in result.output
    (last,) = [line for line in result.output.splitlines() if line.startswith("mix m: shards ")]  # the progress
    assert "(100%)" in last and "took" in last
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["inputs"][0]["output"] == inputs["laion"] and manifest["seed"] == 0
    assert (tmp_path / "o" / "mix.yaml").read_text().startswith("name: m")


def test_a_mix_that_dies_after_its_first_shard_resumes_to_the_uninterrupted_bytes(mixed, inputs, tmp_path, monkeypatch):
    """The process dies while writing its second shard (a torn '.tmp-' file left behind): the rerun writes the
    missing shards only, byte-identical to a mix that never stopped."""
    from lvm_data.mix import shards as mix_shards

    out, _ = mixed
    again = tmp_path / "again"
    real, written = mix_shards.commit_shard, []

    def dies_on_the_second(out_, split, shard, rows, meta, digest):
        if written:
            (again / "train").mkdir(parents=True, exist_ok=True)
            (again / "train" / ".tmp-torn-part.parquet").write_bytes(b"PAR1 torn")
            raise SystemExit("killed")
        written.append(shard)
        return real(out_, split, shard, rows, meta, digest)

    monkeypatch.setattr("pipelines.mix.commit_shard", dies_on_the_second)
    with pytest.raises(BaseException):  # noqa: B017 - whatever the runner wraps the death in
        run_mix(mix_config(inputs, again), None, [])
    assert len(list((again / "shards").glob("*.json"))) == 1
    monkeypatch.setattr("pipelines.mix.commit_shard", real)
    run_mix(mix_config(inputs, again), None, [])
    assert shard_bytes(again) == shard_bytes(out)
    assert not list(again.rglob(".tmp-*"))


def test_a_damaged_shard_marker_means_the_shard_is_written_again(mixed, inputs, tmp_path):
    out, _ = mixed
    again = tmp_path / "again"
    run_mix(mix_config(inputs, again), None, [])
    (again / "shards" / "train-00000.json").write_text('{"split": "tra')  # torn by outside damage
    run_mix(mix_config(inputs, again), None, [])
    assert shard_bytes(again) == shard_bytes(out)
    assert json.loads((again / "shards" / "train-00000.json").read_text())["shard"] == 0
