#!/usr/bin/env bash
# One idempotent set-up for hodei-stream: a .venv at the repository root with the project
# installed (editable) and its gRPC code generated from protos/.
#
#   ./install.sh          install, or do nothing (in milliseconds) when the install is current
#   ./install.sh --dev    the same plus the test dependencies
#   ./install.sh --check  exit 0 when the install is current, 1 when it is not; install nothing
#
# "Current" means the stamp in .venv matches a hash of everything an install depends on
# (pyproject.toml, protos/, this script), so a change to any of them reinstalls on next use.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$root/.venv"
stamp_file="$venv/.hodei-stream-stamp"

mode=run
dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --check) mode=check ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

stamp=$(cd "$root" && cat pyproject.toml install.sh protos/*.proto | sha256sum | cut -d' ' -f1)
installed=$(cat "$stamp_file" 2>/dev/null || true)
# A dev install also serves a plain one; a plain one does not serve --dev.
if [[ "$installed" == "$stamp dev=1" || ( $dev == 0 && "$installed" == "$stamp dev=0" ) ]]; then
  exit 0
fi
[[ $mode == check ]] && exit 1

python=${HODEI_PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "install.sh: $python not found; install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "install.sh: $("$python" -V 2>&1) is too old; hodei-stream needs Python 3.10 or newer" >&2
  exit 1
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "install.sh: $python has no venv module; install it (Debian/Ubuntu: apt-get install python3-venv)" >&2
  exit 1
fi

step() { printf '\033[1minstall.sh:\033[0m %s\n' "$*" >&2; }
extras=codegen
[[ $dev == 1 ]] && extras=codegen,dev

# Rebuilding from an empty venv is what makes the install reproducible: a half-finished
# earlier run leaves nothing behind that a later run trusts (the stamp is written last).
rm -f "$stamp_file"
if [[ ! -x "$venv/bin/python" ]]; then
  step "[1/3] creating $venv with $("$python" -V 2>&1)"
  "$python" -m venv "$venv"
else
  step "[1/3] reusing $venv"
fi
step "[2/3] installing hodei-stream[$extras] and its dependencies (pip)"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet --editable "$root[$extras]"
step "[3/3] generating gRPC code from protos/hodei.proto"
"$venv/bin/python" -m hodei_stream.proto.generate
echo "$stamp dev=$dev" > "$stamp_file"
step "done: $venv/bin/stream-logs, hodei, hodei-server"
