import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import RunInference
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from lvm_data.items import Frame
from lvm_data.process import Pending, tokenize
from lvm_data.sentences.base import Sentence
from lvm_data.testing import write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines.inference import TokenizerHandler, frames_of


def pending(name: str, n: int, value: int = 0, size: int = 32) -> Pending:
    frames = [Frame(np.full((size, size, 3), value + i, np.uint8), f"{name}/{i}") for i in range(n)]
    return Pending(Sentence("s", "single", "image", frames, [name], "u1"), {name: f"{name}.png"})


class FakeTokenizer:
    """Codes = the first pixel value of each image; refuses any batch holding a 255 pixel."""

    def __init__(self):
        self.calls = []

    def encode(self, images):
        self.calls.append(len(images))
        if (images == 255).any():
            raise RuntimeError("CUDA out of memory (pretend)")
        return np.repeat(images[:, :1, 0, 0].astype(np.uint16), 4, axis=1)

    def runs_on(self):
        return "fake"


def test_batches_are_weighted_by_frame_count():
    handler = TokenizerHandler("t", frames_per_batch=8)
    kwargs = handler.batch_elements_kwargs()
    assert kwargs["min_batch_size"] == kwargs["max_batch_size"] == 8
    assert kwargs["element_size_fn"] is frames_of and frames_of(pending("a", 3)) == 3
    assert handler.get_num_bytes([pending("a", 2), pending("b", 1)]) == 3 * 32 * 32 * 3
    assert handler.get_metrics_namespace() == "lvm_data.tokenize"


def test_model_sharing_follows_the_device():
    assert not TokenizerHandler("t", device="cpu").share_model_across_processes()
    assert TokenizerHandler("t", device="cuda:0").share_model_across_processes()
    copies = TokenizerHandler("t", device="cpu", copies=2)
    assert copies.share_model_across_processes() and copies.model_copies() == 2


def test_one_call_per_batch_and_codes_split_back_per_sentence():
    fake = FakeTokenizer()
    out = TokenizerHandler("t").run_inference([pending("a", 2, 10), pending("b", 1, 20)], fake)
    assert fake.calls == [3]
    assert [t.row.tokens.tolist() for t in out] == [[10] * 4 + [11] * 4, [20] * 4]
    assert [(e.key, e.uri, e.outcome.is_ok, e.sentence_id) for e in out[1].events] == [
        ("b", "b.png", True, out[1].row.id)]


def test_a_failing_batch_is_split_and_only_the_bad_sentence_fails():
    fake = FakeTokenizer()
    out = TokenizerHandler("t").run_inference([pending("a", 1, 1), pending("bad", 1, 255), pending("c", 1, 3)], fake)
    assert fake.calls == [3, 1, 1, 1]
    assert [t.row is None for t in out] == [False, True, False]
    (event,) = out[1].events
    assert event.outcome.reason.value == "tokenize_error" and "out of memory" in event.outcome.detail


def test_run_inference_in_a_pipeline_with_a_tiny_checkpoint(tmp_path):
    folder = str(write_tiny_checkpoint(tmp_path / "tiny"))
    elements = [pending(f"s{i}", 1 + i % 3, value=40 * i) for i in range(5)]
    tokenizer = load(folder, device="cpu")
    expected = [(p.sentence.id, tokenizer.encode(p.pixels()).reshape(-1).tolist()) for p in elements]
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as p:
        got = (p | beam.Create(elements) | RunInference(TokenizerHandler(folder, device="cpu", frames_per_batch=4))
               | beam.Map(lambda t: (t.row.id, t.row.tokens.tolist())))
        assert_that(got, equal_to(expected))


def test_the_device_label_answers_through_beams_model_proxy(tmp_path):
    """On CUDA the handler shares its model across processes: the rows' device must still be known."""
    import uuid

    from apache_beam.utils.multi_process_shared import MultiProcessShared

    from lvm_data import tokenizer as lvm_tokenizer

    ckpt = str(write_tiny_checkpoint(tmp_path / "ckpt"))
    shared = MultiProcessShared(lambda: lvm_tokenizer.load(ckpt, device="cpu"), tag=f"t-{uuid.uuid4().hex}",
                                always_proxy=True).acquire()
    (row,) = tokenize(shared, [pending("a", 1, size=32)])
    assert row.row is not None and row.row.device == "cpu"
