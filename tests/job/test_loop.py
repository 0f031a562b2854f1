from lvm_data.job.config import parse_job_text
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import finish_run, open_run
from lvm_data.media.samples import photos
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines.tokenize import run_job


def test_plain_loop_writes_what_the_pipeline_writes(tmp_path):
    tiny = str(write_tiny_checkpoint(tmp_path / "tiny"))
    write_corpus(tmp_path / "in", photos("heldout"))
    source = images_source("photos", tmp_path / "in")
    pipeline_text = job_text("j", tmp_path / "pipeline", tiny, [source], shard_size=3, batch_size=2)
    run_job(parse_job_text(pipeline_text), pipeline_text, [])
    tokenizer = load(tiny, device="cpu")
    run = open_run(
        parse_job_text(job_text("j", tmp_path / "loop", tiny, [source], shard_size=3, batch_size=2)), tokenizer
    )
    markers = LocalExecutor(run, tokenizer).execute()
    manifest = finish_run(run, "local loop")
    assert sorted(m["unit"] for m in markers) == ["000000", "000001", "000002"]
    for read in (read_sentences, read_ledger):
        assert read(str(tmp_path / "loop")).equals(read(str(tmp_path / "pipeline")))
    assert [m["counts"] for m in list_markers(str(tmp_path / "loop"))] == [
        m["counts"] for m in list_markers(str(tmp_path / "pipeline"))
    ]
    assert manifest["totals"]["inputs"] == 8 and manifest["runner"] == "local loop"
