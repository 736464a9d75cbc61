#!/usr/bin/env bash
# A CI/CD pipeline on a Hodei server, one job per stage, streamed in turn:
# cicd_pipeline.sh [--fail-fast|--keep-going] [--break-tests] (--help for every option).
# Installs hodei-stream on first use.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
run_python -m hodei_stream.jobs.cicd_pipeline "$@"
