"""Template names as job files spell them."""

from __future__ import annotations

from lvm_data.sentences.base import Template, TemplateContext
from lvm_data.sentences.category import Category
from lvm_data.sentences.derived import Derived
from lvm_data.sentences.multi_annotation import MultiAnnotation
from lvm_data.sentences.multiview import MultiView
from lvm_data.sentences.pairs import Pairs
from lvm_data.sentences.sequence import Sequence
from lvm_data.sentences.single import Single
from lvm_data.sentences.video import Video

TEMPLATES: dict[str, type[Template]] = {
    cls.name: cls for cls in (Single, Video, Pairs, MultiAnnotation, Sequence, Category, Derived, MultiView)
}


def make_template(name: str, options: dict | None = None, context: TemplateContext = TemplateContext()) -> Template:
    if name not in TEMPLATES:
        raise ValueError(f"template {name!r} is not known; choose one of {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[name](options, context)
