#!/usr/bin/env bash
# A data pipeline on a Hodei server, one job per stage (ingest → transform → validate → load →
# report), streamed in turn: data_processing_pipeline.sh [--records N] [--corrupt-rate P]
# (--help for every option).  Installs hodei-stream on first use.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
run_python -m hodei_stream.jobs.data_processing_pipeline "$@"
