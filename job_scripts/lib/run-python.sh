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
  # -P (Python 3.11 and later): the current folder stays off sys.path, so a hodei_stream
  # folder there (another checkout) cannot shadow the installed code.
  local safe_path=()
  grep -qE '^version(_info)? = 3\.(1[1-9]|[2-9][0-9])' "$root/.venv/pyvenv.cfg" && safe_path=(-P)
  exec "$root/.venv/bin/python" "${safe_path[@]}" "$@"
}
