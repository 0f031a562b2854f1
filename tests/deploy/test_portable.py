"""deploy/portable, deploy/flink, deploy/spark: the submit script's flags, the compose files' wiring
(versions, worker pool, artifact staging, shared paths), and the EXTERNAL worker-pool path end to end
against Beam's own Python job service (the Flink and Spark job servers cannot be fetched here)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import FlinkRunnerOptions

from lvm_data.job.config import parse_job_text
from lvm_data.media.samples import photos
from lvm_data.shards.reader import read_sentences
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from pipelines.tokenize import run_job

from .flags import DEPLOY, beam_options, dry_run, failing_run, unknown_to_beam

COMPOSE = {name: yaml.safe_load((DEPLOY / name / "docker-compose.yaml").read_text()) for name in ("flink", "spark")}
RUNNER_WORKER = {"flink": "taskmanager", "spark": "spark-worker"}  # where the runner starts SDK workers


@pytest.mark.parametrize(
    "environment, extra, config",
    [
        ("EXTERNAL", {"WORKER_POOL": "localhost:50001"}, "localhost:50001"),
        ("DOCKER", {"IMAGE": "lvm-data-worker:local"}, "lvm-data-worker:local"),
        ("PROCESS", {}, '{"command": "/opt/apache/beam/boot"}'),
        ("LOOPBACK", {}, None),
    ],
)
def test_submit_flags_per_environment(environment, extra, config):
    argv = dry_run(
        "portable/run.sh", "job.yaml", "--limit", "5", ENVIRONMENT=environment, JOB_ENDPOINT="jobs:8099", **extra
    )
    assert argv[:3] == ["lvm-data", "run", "job.yaml"] and argv[-2:] == ["--limit", "5"]
    flags = argv[3:-2]
    assert unknown_to_beam(flags) == set()
    options = beam_options(flags)
    assert (options["runner"], options["job_endpoint"], options["environment_type"]) == (
        "PortableRunner",
        "jobs:8099",
        environment,
    )
    assert options["environment_config"] == config


def test_submit_refuses_an_unknown_environment_and_docker_without_an_image():
    assert "EXTERNAL, DOCKER" in failing_run("portable/run.sh", "job.yaml", ENVIRONMENT="K8S")
    assert "IMAGE" in failing_run("portable/run.sh", "job.yaml", ENVIRONMENT="DOCKER")


def test_job_servers_match_this_beam_and_a_published_flink_version():
    flink = COMPOSE["flink"]["services"]
    job_server = flink["jobserver"]["image"]
    assert job_server.endswith(f"_job_server:{apache_beam.__version__}")
    flink_minor = job_server.split("_")[1].removeprefix("flink")
    assert flink_minor in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    assert flink["taskmanager"]["image"].split(":")[1].startswith(flink_minor + ".")
    assert "--flink-master=jobmanager:8081" in flink["jobserver"]["command"]
    spark = COMPOSE["spark"]["services"]
    assert spark["jobserver"]["image"] == f"apache/beam_spark3_job_server:{apache_beam.__version__}"
    assert spark["spark-worker"]["image"].split(":")[1].startswith("3.5.")  # Beam's Spark 3 runner: Spark 3.5
    assert "--spark-master-url=spark://spark-master:7077" in spark["jobserver"]["command"]


@pytest.mark.parametrize("name", ["flink", "spark"])
def test_worker_pool_sits_beside_the_runner_workers_and_sees_the_same_paths(name):
    services = COMPOSE[name]["services"]
    pool, runner_worker = services["worker-pool"], RUNNER_WORKER[name]
    assert pool["build"] == {"context": "../..", "dockerfile": "deploy/dataflow/Dockerfile"}
    assert (DEPLOY / name / pool["build"]["context"] / pool["build"]["dockerfile"]).is_file()
    assert pool["command"] == ["--worker_pool"]  # Beam's boot: worker_pool_main on port 50000
    assert pool["network_mode"] == f"service:{runner_worker}"  # so WORKER_POOL=localhost:50000 reaches it
    (data,) = pool["volumes"]
    host, container = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", data).split(":")  # compose's ${VAR:-default}
    assert host == container == "/tmp/lvm-data"  # a job's paths mean the same on the launching machine and workers
    staging = next(a for a in services["jobserver"]["command"] if a.startswith("--artifacts-dir="))
    mount = f"artifacts:{staging.split('=', 1)[1]}"
    assert mount in services["jobserver"]["volumes"] and mount in services[runner_worker]["volumes"]
    assert "artifacts" in COMPOSE[name]["volumes"]


def test_gpu_override_reserves_a_gpu_for_the_worker_pool():
    override = yaml.safe_load((DEPLOY / "worker-pool-gpu.compose.yaml").read_text())
    (device,) = override["services"]["worker-pool"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


@pytest.mark.slow
def test_external_worker_pool_through_the_submit_script_gives_the_embedded_rows(tmp_path, services):
    tiny = write_tiny_checkpoint(tmp_path / "tiny")
    files = [str(p) for p in photos("heldout")]
    job = tmp_path / "job.yaml"
    job.write_text(job_text("ext", tmp_path / "external", tiny, [images_source("photos", files)], shard_size=2))
    bin_dir = str(Path(sys.executable).parent)
    job_port = services(
        lambda port: [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            "--port",
            str(port),
        ],
        "jobs",
    )
    venv_first = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    pool_port = services(
        lambda port: [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(port)],
        "pool",
        venv_first,
    )  # workers: `python` on PATH
    result = subprocess.run(
        ["bash", str(DEPLOY / "portable" / "run.sh"), str(job), "--no-progress"],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "JOB_ENDPOINT": f"localhost:{job_port}",
            "WORKER_POOL": f"localhost:{pool_port}",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 items: 3 ok, 0 filtered, 0 failed -> 3 sentences" in result.stdout
    embedded = job_text("ext", tmp_path / "embedded", tiny, [images_source("photos", files)], shard_size=2)
    run_job(parse_job_text(embedded), embedded, [])
    columns = ["id", "tokens", "frames"]
    assert read_sentences(str(tmp_path / "external"), columns=columns).equals(
        read_sentences(str(tmp_path / "embedded"), columns=columns)
    )
    assert "Starting worker with command" in (tmp_path / "pool.log").read_text()  # the pool ran the SDK workers
