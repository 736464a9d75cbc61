#!/usr/bin/env bash
# Build, test or deploy a sample project as a Hodei job, streamed live:
# cicd_simple.sh --build|--test|--deploy|--all [--break-tests] (--help for every option).
# Installs hodei-stream on first use.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
run_python -m hodei_stream.jobs.cicd_simple "$@"
