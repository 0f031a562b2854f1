#!/usr/bin/env bash
# Run an lvm-data job on Dataflow, one NVIDIA GPU per worker VM (deploy/dataflow/README.md explains each flag).
#
#   PROJECT=my-project BUCKET=gs://my-bucket/lvm \
#   IMAGE=us-central1-docker.pkg.dev/my-project/lvm-data/lvm-data-worker:0.1.0 \
#     deploy/dataflow/run.sh gs://my-bucket/jobs/laion.yaml [lvm-data run options] [more Beam flags]
#
# The job's `output`, its input paths and its `tokenizer` must be locations the workers can read (gs://,
# hf://, builtin:). Settings come from the environment [defaults]:
#   PROJECT, BUCKET, IMAGE  required; Dataflow's temp and staging files go under BUCKET/dataflow/
#   REGION [us-central1]   ZONE [left to Dataflow]   JOB_NAME [Dataflow's default]   MAX_WORKERS [10]
#   GPU_TYPE [nvidia-l4]   MACHINE_TYPE [g2-standard-16]   GPU_DRIVER [install-nvidia-driver]
#   DISK_GB [100]          HARNESS_THREADS [8]   ONE_SDK_PROCESS [1: one SDK process per VM; 0: one per vCPU]
#   LVM_DATA [lvm-data]: the launcher, with the image's Python 3.11 and Beam 2.77
#   DRY_RUN=1 prints the command instead of running it.
set -euo pipefail

if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: PROJECT=... BUCKET=gs://... IMAGE=... $0 JOB.yaml [lvm-data run options] [Beam flags]" >&2
  exit 2
fi
job=$1
shift
require() {
  if [[ -z ${!1:-} ]]; then
    echo "set $1 to $2" >&2
    exit 2
  fi
}
require PROJECT "the Google Cloud project that runs the job"
require BUCKET "a gs:// location for Dataflow's temp and staging files"
require IMAGE "the worker image built from deploy/dataflow/Dockerfile (deploy/dataflow/cloudbuild.yaml)"
if [[ $BUCKET != gs://* ]]; then
  echo "BUCKET must be a gs:// location, got $BUCKET" >&2
  exit 2
fi
read -r -a launcher <<< "${LVM_DATA:-lvm-data}"

args=(
  run "$job"
  --runner=DataflowRunner
  --project="$PROJECT"
  --region="${REGION:-us-central1}"
  --temp_location="${BUCKET%/}/dataflow/temp"
  --staging_location="${BUCKET%/}/dataflow/staging"
  --sdk_container_image="$IMAGE"
  --experiments=use_runner_v2
  "--dataflow_service_options=worker_accelerator=type:${GPU_TYPE:-nvidia-l4};count:1;${GPU_DRIVER:-install-nvidia-driver}"
  --machine_type="${MACHINE_TYPE:-g2-standard-16}"
  --disk_size_gb="${DISK_GB:-100}"
  --number_of_worker_harness_threads="${HARNESS_THREADS:-8}"
  --max_num_workers="${MAX_WORKERS:-10}"
)
[[ -n ${ZONE:-} ]] && args+=(--worker_zone="$ZONE")
[[ -n ${JOB_NAME:-} ]] && args+=(--job_name="$JOB_NAME")
[[ ${ONE_SDK_PROCESS:-1} == 1 ]] && args+=(--experiments=no_use_multiple_sdk_containers)
args+=("$@")

if [[ ${DRY_RUN:-0} == 1 ]]; then
  printf '%q ' "${launcher[@]}" "${args[@]}"
  echo
  exit 0
fi
exec "${launcher[@]}" "${args[@]}"
