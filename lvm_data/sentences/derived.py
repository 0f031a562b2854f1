"""`derived`: LVM's derived pair tasks made from plain images, k pairs per sentence like `pairs`.

Tasks (option `task`): `colorization` [gray, color], `inpainting` [masked, original] (option
`mask`: lvm, LVM's mix of square holes and cell grids, the default | box | patches, with `max_boxes`,
`patch`, `ratio`; lvm_data.media.derive), `edges` [image, Canny edges] (`low`,
`high`; automatic when absent). Masks are seeded by (job seed, item key). Grouping and leftovers as
in `pairs` (lvm_data.sentences.grouping). Options `pairs` (default 8) and `min_pairs` (default 2).
"""

from __future__ import annotations

from lvm_data.determinism import rng_for
from lvm_data.items import DecodedItem, Frame, ItemRef
from lvm_data.media.derive import MASKS, canny_edges, grayscale, inpaint_input
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import TemplateContext
from lvm_data.sentences.grouping import choice, frames_by_role, positive
from lvm_data.sentences.pairs import PairTemplate

TASKS = ("colorization", "inpainting", "edges")


class Derived(PairTemplate):
    name = "derived"

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        self.task = choice(self.options, "task", "colorization", TASKS)
        self.mask = choice(self.options, "mask", "lvm", MASKS)
        self.max_boxes = positive(self.options, "max_boxes", 3)
        self.patch = positive(self.options, "patch", 16)
        self.ratio = float(self.options.get("ratio", 0.5))

    def task_for(self, ref: ItemRef) -> str:
        return self.task

    def pair_of(self, item: DecodedItem) -> tuple[Frame, Frame] | Outcome:
        images = frames_by_role(item).get("image")
        if not images:
            return Outcome.failed(Reason.NOT_MEDIA, f"{item.ref.uri}: no image to derive {self.task} from")
        image = images[0]
        derived = Frame(
            pixels=self.transform(image.pixels, item.key),
            uri=image.uri,
            index=image.index,
            role=DERIVED_ROLES[self.task],
        )
        return (image, derived) if self.task == "edges" else (derived, image)

    def transform(self, pixels, key: str):
        if self.task == "colorization":
            return grayscale(pixels)
        if self.task == "edges":
            return canny_edges(pixels, self.options.get("low"), self.options.get("high"))
        rng = rng_for(self.context.seed, "inpainting", key)
        return inpaint_input(pixels, rng, self.mask, max_boxes=self.max_boxes, patch=self.patch, ratio=self.ratio)


DERIVED_ROLES = {"colorization": "gray", "inpainting": "masked", "edges": "edges"}
