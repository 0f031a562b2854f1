"""Every template is registered, its options are in schemas/job.schema.json, and the schema's defaults
are the ones the code uses (LVM's)."""

import pytest

from lvm_data.job.config import parse_job_text
from lvm_data.media.clips import ClipSpec
from lvm_data.sentences.registry import TEMPLATES, make_template
from lvm_data.shards.schema import load_schema

DEFS = load_schema("job")["$defs"]


def defaults(block: str) -> dict:
    return {k: v["default"] for k, v in DEFS[block]["properties"].items() if "default" in v}


@pytest.mark.parametrize("name", ["video", "pairs", "multi_annotation", "sequence", "category", "derived", "multiview"])
def test_template_is_registered_and_its_schema_defaults_build(name):
    assert name in TEMPLATES
    options = {k: v for k, v in defaults(f"template_{name}").items()}
    built = make_template(name, options)
    assert built.context.max_images == options["max_images"] == 16  # LVM: 16 images = 4096 tokens
    text = (
        f"name: j\noutput: /o\nsources:\n  - name: s\n    input: {{format: images, paths: /x}}\n"
        f"    template: {{name: {name}, not_an_option: 1}}"
    )
    with pytest.raises(ValueError, match="template"):
        parse_job_text(text)


def test_lvm_defaults():
    pairs = make_template("pairs")
    assert (pairs.pairs, pairs.min_pairs) == (defaults("template_pairs")["pairs"], 2) == (8, 2)
    category = make_template("category")
    assert (category.shot_size, category.shots) == (defaults("template_category")["shot_size"], 4)
    clip = defaults("clip")
    spec = ClipSpec()
    assert (
        (spec.frames, list(spec.strides), spec.offset, spec.max_clips)
        == (clip["frames"], clip["stride"], clip["offset"], clip["max_clips"])
        == (16, [8, 12, 24], "random", 64)
    )
    assert clip["clips"] == "all" and spec.clips is None
