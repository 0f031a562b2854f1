"""Template names as job files spell them."""

from __future__ import annotations

from lvm_data.sentences.base import Template, TemplateContext
from lvm_data.sentences.single import Single

TEMPLATES: dict[str, type[Template]] = {cls.name: cls for cls in (Single,)}


def make_template(name: str, options: dict | None = None, context: TemplateContext = TemplateContext()) -> Template:
    if name not in TEMPLATES:
        raise ValueError(f"template {name!r} is not known; choose one of {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[name](options, context)
