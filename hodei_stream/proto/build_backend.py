"""The build backend: setuptools, plus the gRPC code generated from ``protos/`` on every build.

``pyproject.toml`` names this module as the PEP 517 backend (``backend-path = ["."]``: a
frontend imports it from the source tree, where ``hodei_stream`` is importable) and
``GenerateGrpcCode`` as setuptools' ``build_py``.  So ``pip wheel .``, ``pip install .``,
``pipx install .``, ``uv pip install -e .`` and a wheel built from the sdist all carry the
code that ``generate.py`` makes with the pinned grpcio-tools of ``[build-system].requires``.
The generated files are never taken from the source tree (an old checkout may hold stale
ones): a wheel gets them fresh in its build folder, an editable install beside the sources
it imports.  The sdist carries ``protos/`` (as build sources) instead of generated code.
"""

from __future__ import annotations

from pathlib import Path

from setuptools.build_meta import (
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)
from setuptools.command.build_py import build_py

from hodei_stream.proto import generate

__all__ = [
    "GenerateGrpcCode",
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

GENERATED_MODULES = {Path(name).stem for name in generate.GENERATED_FILES if name.endswith(".py")}


class GenerateGrpcCode(build_py):
    """setuptools' ``build_py`` that also writes the generated gRPC modules."""

    def run(self) -> None:
        super().run()
        # After the copy, so nothing from the source tree can overwrite fresh code.  An
        # editable install imports the source tree, so the code goes there.
        generate.generate(generate.SOURCE_ROOT if self.editable_mode else Path(self.build_lib))

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        """The package's modules, less generated ones a checkout may hold (git-ignored)."""
        modules: list[tuple[str, str, str]] = super().find_package_modules(package, package_dir)
        if package != "hodei_stream.proto":
            return modules
        return [entry for entry in modules if entry[1] not in GENERATED_MODULES]

    def get_source_files(self) -> list[str]:
        """What the sdist carries: the modules and the protos the code is generated from."""
        protos = sorted(
            path.relative_to(generate.SOURCE_ROOT).as_posix() for path in generate.PROTO_DIR.glob("*.proto")
        )
        return [*super().get_source_files(), *protos]
