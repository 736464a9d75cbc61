"""Generate the Python code for ``protos/hodei.proto`` into this package.

The one generator: the build backend runs it on every build (``build_backend.py``: a wheel,
an sdist's wheel, an editable install), and the staleness test runs it into a temporary
folder to compare.  ``python -m hodei_stream.proto.generate`` regenerates in place by hand.
The proto is mapped to the virtual path ``hodei_stream/proto/hodei.proto`` so that the
generated modules import each other as ``hodei_stream.proto.hodei_pb2`` instead of a bare
top-level ``hodei_pb2``.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parents[1]
PROTO_DIR = SOURCE_ROOT / "protos"
# Everything generate() writes, relative to this package folder.
GENERATED_FILES = ("hodei_pb2.py", "hodei_pb2.pyi", "hodei_pb2_grpc.py", "hodei_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Write the generated modules under ``out_root/hodei_stream/proto`` and return them.

    Every failure is a ``SystemExit`` with one line: setuptools turns an ordinary exception
    from a build step of an editable install into a warning and goes on without the code.
    """
    try:
        from grpc_tools import protoc  # a build requirement, and a dev one for the tests
    except ImportError:
        raise SystemExit("generate: grpc_tools is missing: install grpcio-tools (see pyproject.toml)") from None

    include = str(Path(protoc.__file__).parent / "_proto")  # google/protobuf/*.proto
    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hodei-protoc-") as scratch:
        args = [
            "grpc_tools.protoc",
            f"-I{include}",
            f"-Ihodei_stream/proto={PROTO_DIR}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            f"--plugin=protoc-gen-grpclib_python={grpclib_plugin(Path(scratch))}",
            f"--grpclib_python_out={out_root}",
            str(PROTO_DIR / "hodei.proto"),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"generate: protoc failed on {PROTO_DIR / 'hodei.proto'}")
    return [out_root / "hodei_stream" / "proto" / name for name in GENERATED_FILES]


def grpclib_plugin(folder: Path) -> Path:
    """Write a protoc plugin program that runs grpclib's plugin with this very Python.

    protoc runs plugins as programs.  grpclib's console script is not always beside
    ``sys.executable``: pip's isolated build puts it in an overlay folder on PATH, uv in its
    own build venv.  Running grpclib's plugin with this interpreter (and the
    environment it inherits) finds the grpclib the generator itself imports, in every case.
    """
    plugin = folder / "protoc-gen-grpclib_python"
    # grpclib.plugin.main has no ``__main__`` block: call its main() as the console script does.
    program = "from grpclib.plugin.main import main; main()"
    plugin.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(program)}\n")
    plugin.chmod(0o755)
    return plugin


def main() -> None:
    """Generate in place: into the package folder this file sits in."""
    generate(SOURCE_ROOT)


if __name__ == "__main__":
    main()
