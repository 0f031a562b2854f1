#!/usr/bin/env bash
# Submit an lvm-data job to a Beam portable job server: Flink's (deploy/flink), Spark's (deploy/spark), or
# Beam's own Python job service on this machine (deploy/portable/README.md).
#
#   JOB_ENDPOINT=localhost:8099 WORKER_POOL=localhost:50000 deploy/portable/run.sh JOB.yaml [lvm-data run options] [Beam flags]
#
# Settings come from the environment [defaults]:
#   JOB_ENDPOINT [localhost:8099]  the job server's gRPC address, as this machine reaches it
#   ENVIRONMENT [EXTERNAL]         where the Python SDK workers run:
#     EXTERNAL  a worker pool started beforehand (`IMAGE --worker_pool`, or `python -m
#               apache_beam.runners.worker.worker_pool_main --service_port 50000`) at WORKER_POOL
#               [localhost:50000], the address as the runner's workers (task managers, executors) reach it
#     DOCKER    the runner's workers start IMAGE themselves (they need a Docker daemon)
#     PROCESS   the runner's workers start BOOT [/opt/apache/beam/boot] themselves (Python + lvm-data on them)
#     LOOPBACK  in this process (a check, not a deployment)
#   SDK_PARALLELISM [1]  SDK worker processes per runner worker (0: the runner chooses)
#   LVM_DATA [lvm-data]  the launcher command;  DRY_RUN=1 prints the command instead of running it.
set -euo pipefail

if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: JOB_ENDPOINT=host:port $0 JOB.yaml [lvm-data run options] [Beam flags]" >&2
  exit 2
fi
job=$1
shift
read -r -a launcher <<< "${LVM_DATA:-lvm-data}"
environment=${ENVIRONMENT:-EXTERNAL}
case $environment in
  EXTERNAL) config=${WORKER_POOL:-localhost:50000} ;;
  DOCKER)
    if [[ -z ${IMAGE:-} ]]; then
      echo "set IMAGE to the worker image built from deploy/dataflow/Dockerfile" >&2
      exit 2
    fi
    config=$IMAGE
    ;;
  PROCESS) config="{\"command\": \"${BOOT:-/opt/apache/beam/boot}\"}" ;;
  LOOPBACK) config= ;;
  *) echo "ENVIRONMENT must be EXTERNAL, DOCKER, PROCESS or LOOPBACK, got $environment" >&2; exit 2 ;;
esac

args=(
  run "$job"
  --runner=PortableRunner
  --job_endpoint="${JOB_ENDPOINT:-localhost:8099}"
  --environment_type="$environment"
  --sdk_worker_parallelism="${SDK_PARALLELISM:-1}"
)
[[ -n $config ]] && args+=(--environment_config="$config")
args+=("$@")

if [[ ${DRY_RUN:-0} == 1 ]]; then
  printf '%q ' "${launcher[@]}" "${args[@]}"
  echo
  exit 0
fi
exec "${launcher[@]}" "${args[@]}"
