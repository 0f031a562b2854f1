
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
