#!/usr/bin/env bash
# One idempotent set-up for hodei-stream: a .venv at the repository root with the project
# installed (editable).  The build backend generates the gRPC code from protos/ during the
# install, exactly as it does for a wheel (hodei_stream/proto/build_backend.py).
#
#   ./install.sh          install, or do nothing (in milliseconds) when the install is current
#   ./install.sh --dev    the same plus the test and static-check dependencies
#   ./install.sh --check  exit 0 when the install is current, 1 when it is not; install nothing
#
# Installs with uv (from PATH, or its PyPI wheel fetched into .venv/tools) from PyPI, else
# with pip; HODEI_INSTALLER=pip forces pip and its configuration (for example a private index).
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
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
installer=${HODEI_INSTALLER:-uv}
if [[ $installer != uv && $installer != pip ]]; then
  echo "install.sh: HODEI_INSTALLER must be uv or pip, not '$installer'" >&2
  exit 2
fi

# "Current": the stamp in .venv matches a hash of everything an install depends on, so a
# change to any of them reinstalls on next use.
stamp=$(cd "$root" && cat pyproject.toml install.sh protos/*.proto hodei_stream/proto/generate.py \
  hodei_stream/proto/build_backend.py | sha256sum | cut -d' ' -f1)
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

# Bold only for a person: a log file or a pipe gets plain text.
if [[ -t 2 && -z ${NO_COLOR:-} ]]; then
  step() { printf '\033[1minstall.sh:\033[0m %s\n' "$*" >&2; }
else
  step() { printf 'install.sh: %s\n' "$*" >&2; }
fi
target="$root"
[[ $dev == 1 ]] && target="$root[dev]"

# Rebuilding from an empty venv is what makes the install reproducible: a half-finished
# earlier run leaves nothing behind that a later run trusts (the stamp is written last).
rm -f "$stamp_file"
if [[ ! -x "$venv/bin/python" ]]; then
  step "[1/3] creating $venv with $("$python" -V 2>&1)"
  # Without pip: ensurepip takes 5-12 s here; uv installs pip with the rest, and the pip
  # fallback bootstraps it below.
  "$python" -m venv --without-pip "$venv"
else
  step "[1/3] reusing $venv"
fi

# uv installs from PyPI in a fraction of pip's time (README, "Install"); it comes from PATH
# or as the PyPI wheel, fetched once into .venv/tools with pip (this Python's, else the venv's).
uv=
tools="$venv/tools"
if [[ $installer == pip ]]; then
  step "[2/3] installer: pip (HODEI_INSTALLER=pip)"
elif [[ -x "$tools/bin/uv" ]]; then
  uv="$tools/bin/uv"
  step "[2/3] installer: uv $("$uv" --version | cut -d' ' -f2), in $tools"
elif command -v uv >/dev/null 2>&1; then
  uv=$(command -v uv)
  step "[2/3] installer: uv $("$uv" --version | cut -d' ' -f2), from $uv"
else
  step "[2/3] installer: getting uv from PyPI with pip, into $tools"
  rm -rf "$tools"  # whatever a failed earlier attempt left
  bootstrap=("$python" -m pip)
  if ! "$python" -m pip --version >/dev/null 2>&1; then
    # No pip beside this Python (Debian without python3-pip): the venv's own, from ensurepip.
    "$venv/bin/python" -m ensurepip --default-pip >/dev/null && bootstrap=("$venv/bin/python" -m pip)
  fi
  # PIP_ROOT_USER_ACTION: as root (containers, CI) pip warns about installing into the system; not here.
  if PIP_ROOT_USER_ACTION=ignore "${bootstrap[@]}" install --quiet --disable-pip-version-check --target "$tools" uv; then
    uv="$tools/bin/uv"
  else
    step "[2/3] uv is not available; installing with pip instead (slower)"
  fi
fi

if [[ -n $uv ]]; then
  step "[3/3] installing hodei-stream${target#"$root"} and its dependencies with uv, generating the gRPC code from protos/"
  # --reinstall-package: rebuild our own package every time, so the generated code follows
  # protos/ (uv would otherwise keep an editable build whose version did not change).
  # pip too: the venv has none of its own, and `hodei bench --setup` uses it.
  # --compile-bytecode, as pip does: without it every start of stream-logs compiles protobuf
  # and hpack again where bytecode is not written (PYTHONDONTWRITEBYTECODE, a read-only
  # install): measured here, stream-logs --help 0.30 s with bytecode, 0.56 s without.
  "$uv" pip install --python "$venv/bin/python" --compile-bytecode --reinstall-package hodei-stream \
    --config-setting editable_mode=compat --editable "$target" pip
else
  step "[3/3] installing hodei-stream${target#"$root"} and its dependencies with pip, generating the gRPC code from protos/"
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$venv/bin/python" -m ensurepip --default-pip >/dev/null
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on \
    --config-settings editable_mode=compat --editable "$target"
fi
# editable_mode=compat: the source tree goes on sys.path by a plain path line in a .pth file.
# setuptools' default editable mode instead runs an import finder from a .pth at every start
# of every command, which imports pathlib, importlib.util and fnmatch: ~25 ms of stream-logs'
# ~100 ms to its first line.  Source edits stay live either way; the price of compat is that
# the checkout's other folders (tests, job_scripts) are importable by name from this venv.
# The build step writes the generated modules into the source tree for an editable install;
# their absence would only show later, as an import error in the middle of a job script.
if ! "$venv/bin/python" -c 'import hodei_stream.proto.hodei_pb2, hodei_stream.proto.hodei_grpc' 2>/dev/null; then
  echo "install.sh: the install did not generate hodei_stream/proto/hodei_pb2.py from protos/ (see the build output above)" >&2
  exit 1
fi
# The package's own bytecode, written now: an editable install leaves the checkout's modules
# uncompiled, and where bytecode is not written at run time (PYTHONDONTWRITEBYTECODE, a CI
# image's default) every start of stream-logs would compile them again.
PYTHONDONTWRITEBYTECODE= "$venv/bin/python" -m compileall -q "$root/hodei_stream" >/dev/null
echo "$stamp dev=$dev" > "$stamp_file"
step "done: $venv/bin/stream-logs, hodei, hodei-server"
