import numpy as np
import pytest
from PIL import Image

from lvm_data.media.samples import photos


@pytest.fixture(scope="session")
def pictures() -> dict[str, np.ndarray]:
    """The held-out sample photos, decoded (name -> (H, W, 3) uint8)."""
    return {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in photos("heldout")}
