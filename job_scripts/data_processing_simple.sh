#!/usr/bin/env bash
# ETL on a Hodei server, its log streamed live: data_processing_simple.sh --etl [--records N]
# (--help for every option).  Installs hodei-stream on first use.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
run_python -m hodei_stream.jobs.data_processing_simple "$@"
