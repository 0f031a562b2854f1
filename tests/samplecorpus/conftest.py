import pytest

from lvm_data.samplecorpus.inputs import assemble


@pytest.fixture(scope="session")
def assembled(tmp_path_factory):
    """The sample's inputs, assembled once (read-only for tests: copy before changing anything)."""
    return assemble(tmp_path_factory.mktemp("sample") / "media")
