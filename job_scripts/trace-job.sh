#!/usr/bin/env bash
# Trace a job already on a Hodei server: its states with times, its log in the background,
# its result: trace-job.sh JOB_ID [--no-logs] [--interval S] (--help for every option).
# Installs hodei-stream on first use.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
run_python -m hodei_stream.jobs.trace_job "$@"
