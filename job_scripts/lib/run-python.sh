# Sourced by every launcher in job_scripts/: make sure the install is current, then exec
# the project's Python.  install.sh returns in milliseconds, printing nothing, when the
# install is current; on first use (or after a dependency change) it installs with progress.
#
#   source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/run-python.sh"
#   run_python -m some.module "$@"

run_python() {
  local root
  # readlink -f: a launcher symlinked into ~/bin still finds its repository.
  root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
  "$root/install.sh"
  exec "$root/.venv/bin/python" "$@"
}
