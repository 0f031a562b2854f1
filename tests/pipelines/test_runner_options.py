"""How many SDK processes share a machine (each sizes its decoder pool from it), and which devices encode."""

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from lvm_data.job.encoder import devices_for
from lvm_data.job.executor import auto_workers, available_cpus
from pipelines.tokenize import processes_per_machine


@pytest.mark.parametrize(
    ("flags", "processes"),
    [
        ([], 1),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 2),
        (["--direct_running_mode=multi_threading", "--direct_num_workers=4"], 1),  # threads share one executor
        (["--runner=DataflowRunner"], 0),  # one SDK process per vCPU
        (["--runner=DataflowRunner", "--experiments=use_runner_v2", "--experiments=no_use_multiple_sdk_containers"], 1),
        (["--runner=PortableRunner", "--sdk_worker_parallelism=3"], 3),
    ],
)
def test_processes_per_machine(flags, processes):
    assert processes_per_machine(PipelineOptions(flags)) == processes


def test_decode_workers_share_the_cores():
    cpus = available_cpus()
    assert auto_workers(1) == cpus and auto_workers(0) == 1 and auto_workers(cpus * 4) == 1


def test_encoding_devices_never_fall_back_silently():
    assert devices_for("cpu") == ["cpu"] and devices_for("cuda:1") == ["cuda:1"]
    assert devices_for("cuda", "standin:100") == ["cpu"]  # the stand-in is one pretend device
    import torch

    if not torch.cuda.is_available():
        assert devices_for("auto") == ["cpu"]
        assert devices_for("cuda") == ["cuda"]  # kept, so that loading fails and says why
