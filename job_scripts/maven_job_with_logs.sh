#!/usr/bin/env bash
# A real Maven build on a Hodei server, its log streamed in the background while the job's
# status is watched: maven_job_with_logs.sh [--simple|--complex] [--repo URL|PATH] [--goals "…"]
# [--offline|--online] (--help for every option).  Installs hodei-stream on first use.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
run_python -m hodei_stream.jobs.maven_job_with_logs "$@"
