import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The 2-core machines are shared: OpenMP threads that spin against other processes make CPU steps
    up to 50x slower at random. One thread keeps the trainer's tests steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_mix(tmp_path_factory):
    """A finished mix of two synthetic job outputs (synth.small_mix); read-only: copy it to change it."""
    from .synth import small_mix as build

    return build(tmp_path_factory.mktemp("small-mix"))
