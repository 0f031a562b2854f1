import numpy as np
import pytest
import torch

from .layouts import MICRO, fixture_images, random_state, tiny_state


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The 2-core machines are shared: OpenMP threads spinning against other processes make CPU steps
    many times slower at random. One thread keeps these tests steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_images() -> np.ndarray:
    return fixture_images(2)


@pytest.fixture(scope="session")
def tiny_weights(tiny_images) -> dict[str, torch.Tensor]:
    return tiny_state(tiny_images)


@pytest.fixture(scope="session")
def micro_weights() -> dict[str, torch.Tensor]:
    return random_state(MICRO, seed=1)


@pytest.fixture
def micro_images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, MICRO.resolution, MICRO.resolution, 3), dtype=np.uint8)
