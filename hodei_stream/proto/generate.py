"""Generate the Python code for ``protos/hodei.proto`` into this package.

Run by ``install.sh`` (``python -m hodei_stream.proto.generate``) and by the staleness test,
which generates into a temporary folder and compares.  The proto is mapped to the virtual
path ``hodei_stream/proto/hodei.proto`` so that the generated modules import each other as
``hodei_stream.proto.hodei_pb2`` instead of a bare top-level ``hodei_pb2``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parents[2] / "protos"
PACKAGE_DIR = Path(__file__).resolve().parent
# Everything generate() writes, relative to this package folder.
GENERATED_FILES = ("hodei_pb2.py", "hodei_pb2.pyi", "hodei_pb2_grpc.py", "hodei_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Write the generated modules under ``out_root/hodei_stream/proto`` and return them."""
    from grpc_tools import protoc  # only present where the codegen extra is installed

    plugin = shutil.which("protoc-gen-grpclib_python", path=str(Path(sys.executable).parent))
    if plugin is None:
        raise SystemExit("generate: protoc-gen-grpclib_python not found beside this Python (is grpclib installed?)")
    include = str(Path(protoc.__file__).parent / "_proto")  # google/protobuf/*.proto
    out_root.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{include}",
        f"-Ihodei_stream/proto={PROTO_DIR}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--plugin=protoc-gen-grpclib_python={plugin}",
        f"--grpclib_python_out={out_root}",
        str(PROTO_DIR / "hodei.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("generate: protoc failed on protos/hodei.proto")
    return [out_root / "hodei_stream" / "proto" / name for name in GENERATED_FILES]


def main() -> None:
    """Generate in place: into the package folder this file sits in."""
    generate(PACKAGE_DIR.parents[1])


if __name__ == "__main__":
    main()
