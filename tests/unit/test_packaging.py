"""pyproject.toml tells the truth about what the package needs.

The generated gRPC code refuses runtimes older than the ones it was generated for, so the
declared floors of protobuf and grpcio must be exactly those versions (read back from the
generated files), and the generator must be pinned alike for builds and for the tests.
"""

from __future__ import annotations

import ast
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from hodei_stream.proto import generate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11+; the package supports 3.10
    pytest.skip("tomllib (Python 3.11+) reads pyproject.toml here", allow_module_level=True)

PYPROJECT = tomllib.loads((generate.SOURCE_ROOT / "pyproject.toml").read_text())


def requirements(section: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(text) for text in section]
    return {requirement.name: requirement for requirement in parsed}


def floor(requirement: Requirement) -> Version:
    floors = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    assert len(floors) == 1, f"{requirement}: expected one '>=' floor"
    return floors[0]


def pinned(requirement: Requirement) -> Version:
    pins = [Version(spec.version) for spec in requirement.specifier if spec.operator == "=="]
    assert len(pins) == 1 and len(requirement.specifier) == 1, f"{requirement}: expected an exact pin"
    return pins[0]


def generated_tree(name: str) -> ast.Module:
    path = generate.PACKAGE_DIR / name
    assert path.exists(), f"{name} is missing: run ./install.sh"
    return ast.parse(path.read_text())


def protobuf_gencode_version() -> Version:
    """The version hodei_pb2.py passes to protobuf's ValidateProtobufRuntimeVersion."""
    for node in ast.walk(generated_tree("hodei_pb2.py")):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "ValidateProtobufRuntimeVersion":
            major, minor, patch = (ast.literal_eval(argument) for argument in node.args[1:4])
            return Version(f"{major}.{minor}.{patch}")
    raise AssertionError("hodei_pb2.py no longer calls ValidateProtobufRuntimeVersion: read its check anew")


def grpc_gencode_version() -> Version:
    """GRPC_GENERATED_VERSION in hodei_pb2_grpc.py: it raises on an older grpcio."""
    for node in ast.walk(generated_tree("hodei_pb2_grpc.py")):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "GRPC_GENERATED_VERSION" for t in node.targets):
            return Version(ast.literal_eval(node.value))
    raise AssertionError("hodei_pb2_grpc.py no longer sets GRPC_GENERATED_VERSION: read its check anew")


RUNTIME = requirements(PYPROJECT["project"]["dependencies"])
BUILD = requirements(PYPROJECT["build-system"]["requires"])
DEV = requirements(PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_protobuf_floor_is_what_the_generated_code_checks() -> None:
    gencode = protobuf_gencode_version()
    assert floor(RUNTIME["protobuf"]) == gencode
    # protobuf supports gencode on runtimes of its own major only.
    assert Version(f"{gencode.major + 1}") not in RUNTIME["protobuf"].specifier


def test_grpcio_floor_is_what_the_generated_code_checks() -> None:
    assert floor(RUNTIME["grpcio"]) == grpc_gencode_version()


def test_generator_pinned_alike_for_builds_and_tests() -> None:
    """One grpcio-tools for the build backend and for test_generated's regeneration, and it
    is the one that made the code in this checkout."""
    assert pinned(BUILD["grpcio-tools"]) == pinned(DEV["grpcio-tools"]) == grpc_gencode_version()
    assert Version(metadata.version("grpcio-tools")) == pinned(DEV["grpcio-tools"])


def test_grpcio_tools_is_not_a_runtime_dependency() -> None:
    assert "grpcio-tools" not in RUNTIME
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert [name for name, section in extras.items() if "grpcio-tools" in requirements(section)] == ["dev"]


def test_plumbum_has_an_upper_bound() -> None:
    """jobs/wrapper.py uses plumbum's pipeline internals (proc.srcproc): no unknown major."""
    specifier = RUNTIME["plumbum"].specifier
    assert any(spec.operator == "<" for spec in specifier)
    assert Version(metadata.version("plumbum")) in specifier


def test_installed_runtime_satisfies_the_declarations() -> None:
    for name, requirement in RUNTIME.items():
        assert Version(metadata.version(name)) in requirement.specifier, f"installed {name} outside {requirement}"
