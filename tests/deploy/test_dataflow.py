"""deploy/dataflow: the worker image stays in step with the project's pins and packages, and the launch
script's flags are flags Beam 2.77 knows, with the GPU settings the README explains."""

import configparser
import re
import sys

import apache_beam
import pytest
import yaml
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.testing import images_source, job_text

from .flags import DEPLOY, REPO, beam_options, dry_run, failing_run, pinned, unknown_to_beam

DOCKERFILE = (DEPLOY / "dataflow" / "Dockerfile").read_text()
ENV = {"PROJECT": "my-project", "BUCKET": "gs://my-bucket/lvm/", "IMAGE": "us-docker.pkg.dev/p/r/lvm-data-worker:1"}


def arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M)
    assert match, f"the Dockerfile has no default for ARG {name}"
    return match.group(1)


def instructions(keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(keyword + " ")]


def test_image_pins_match_the_constraints_and_the_launching_environment():
    assert arg("BEAM_VERSION") == pinned("apache-beam") == apache_beam.__version__
    assert arg("TORCH_VERSION") == pinned("torch").split("+")[0]
    assert arg("PYTHON_VERSION") == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert instructions("FROM")[0] == "apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} AS beam"
    assert instructions("ENTRYPOINT") == ['["/opt/apache/beam/boot"]']
    (install,) = [r for r in instructions("RUN") if "pip install" in r]
    assert '"torch==${TORCH_VERSION}"' in install and "-c /tmp/lvm-data/constraints.txt" in install


def test_image_installs_every_package_of_setup_cfg_from_files_the_build_context_sends():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    top_level = {p.split(".")[0] for p in setup["options"]["packages"].split()}
    copied = [src for line in instructions("COPY") if not line.startswith("--from") for src in line.split()[:-1]]
    assert top_level <= set(copied)
    sent = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "dataflow" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for src in copied:
        assert (REPO / src).exists(), f"COPY {src}: no such file in the repository"
        assert src in sent, f"COPY {src}: Dockerfile.dockerignore keeps it out of the build context"


def test_cloud_build_builds_this_dockerfile_with_buildkit_and_pushes_what_it_built():
    build = yaml.safe_load((DEPLOY / "dataflow" / "cloudbuild.yaml").read_text())
    (step,) = build["steps"]
    assert "DOCKER_BUILDKIT=1" in step["env"]  # the Dockerfile-specific ignore file needs BuildKit
    assert "--file=deploy/dataflow/Dockerfile" in step["args"] and step["args"][-1] == "."
    tag = next(a.split("=", 1)[1] for a in step["args"] if a.startswith("--tag="))
    assert build["images"] == [tag]


def test_launch_flags_are_beam_flags_with_one_gpu_per_worker():
    argv = dry_run("dataflow/run.sh", "gs://my-bucket/jobs/laion.yaml", "--max_num_workers=50", **ENV)
    assert argv[:3] == ["lvm-data", "run", "gs://my-bucket/jobs/laion.yaml"]
    flags = argv[3:]
    assert unknown_to_beam(flags) == set()
    options = beam_options(flags)
    assert options["runner"] == "DataflowRunner" and options["sdk_container_image"] == ENV["IMAGE"]
    assert options["temp_location"] == "gs://my-bucket/lvm/dataflow/temp"
    assert options["experiments"] == ["use_runner_v2", "no_use_multiple_sdk_containers"]  # one SDK process per VM
    assert options["dataflow_service_options"] == ["worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]
    assert (options["machine_type"], options["disk_size_gb"], options["number_of_worker_harness_threads"]) == (
        "g2-standard-16",
        100,
        8,
    )
    assert options["max_num_workers"] == 50  # flags after the job file come last and win


def test_launch_settings_from_the_environment():
    argv = dry_run(
        "dataflow/run.sh",
        "job.yaml",
        **ENV,
        GPU_TYPE="nvidia-h100-80gb",
        MACHINE_TYPE="a3-highgpu-1g",
        GPU_DRIVER="install-nvidia-driver:latest",
        ONE_SDK_PROCESS="0",
        ZONE="us-central1-a",
        LVM_DATA="docker run --rm lvm lvm-data",
    )
    assert argv[:6] == ["docker", "run", "--rm", "lvm", "lvm-data", "run"]
    options = beam_options(argv[7:])
    assert options["dataflow_service_options"] == [
        "worker_accelerator=type:nvidia-h100-80gb;count:1;install-nvidia-driver:latest"
    ]
    assert options["experiments"] == ["use_runner_v2"]  # one SDK process per vCPU, each with a model copy
    assert (options["machine_type"], options["worker_zone"]) == ("a3-highgpu-1g", "us-central1-a")


@pytest.mark.parametrize("missing", ["PROJECT", "BUCKET", "IMAGE"])
def test_launch_refuses_without_its_required_settings(missing):
    env = {k: v for k, v in ENV.items() if k != missing}
    assert missing in failing_run("dataflow/run.sh", "job.yaml", **env)


def test_launch_refuses_a_local_bucket_and_a_missing_job_file_argument():
    assert "gs://" in failing_run("dataflow/run.sh", "job.yaml", **{**ENV, "BUCKET": "/tmp/b"})
    assert "usage" in failing_run("dataflow/run.sh", **ENV)


def test_lvm_data_run_takes_the_launch_flags(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(job_text("j", tmp_path / "out", "builtin:tiny", [images_source("p", photos("heldout"))]))
    flags = dry_run("dataflow/run.sh", str(job), "--dry-run", **ENV)[1:]
    result = CliRunner().invoke(main, flags)
    assert result.exit_code == 0, result.output
    assert "source p (images, template single): 1 units, 3 items" in result.output
