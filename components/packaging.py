"""Packaging: a deterministic Lambda zip from a source folder plus its requirements.

The same sources always give a byte-identical archive (fixed timestamps, fixed
permissions, sorted entries, fixed compression), so an unchanged function never
shows a diff. Caches, compiled files and tests stay out of the archive.

A ``requirements.txt`` in the folder is installed for Lambda's platform and
architecture with pip (manylinux wheels only, never a local build), into a cache
keyed on the requirements, the platform and the Python version, so a plan does
not reinstall anything that did not change.

Example::

    spec = PackageSpec(source=Path("app/functions"), runtime="python3.12", architecture="arm64")
    archive = build_archive(spec, extra_files={"resource.enc": encrypted})
    archive.path, archive.sha256
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# 1980-01-01 is the earliest time a zip entry can hold; any fixed value works.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
COMPRESS_LEVEL = 6  # zlib default; fixed so a zlib upgrade of defaults cannot change archives

EXCLUDED_DIRS = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".git",
     ".venv", "venv", "tests"}
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_FILES = frozenset({".DS_Store", "requirements.txt"})

PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

Runner = Callable[..., subprocess.CompletedProcess]


class PackagingError(RuntimeError):
    """A folder that cannot be packaged, or requirements pip could not install."""


def cache_root() -> Path:
    """Where archives and installed requirements are kept between plans.

    ``HARBOR_CACHE_DIR`` moves it (CI caches it between runs); the default sits in
    the program folder's ignored ``.build``.
    """
    return Path(os.environ.get("HARBOR_CACHE_DIR") or Path.cwd() / ".build" / "harbor")


@dataclass(frozen=True)
class PackageSpec:
    """What to package: a folder, for a runtime and an architecture."""

    source: Path
    runtime: str = "python3.12"
    architecture: str = "arm64"
    cache: Path | None = None

    @property
    def python_version(self) -> str | None:
        """``3.12`` for ``python3.12``; None for other runtimes."""
        return self.runtime.removeprefix("python") if self.runtime.startswith("python") else None

    @property
    def cache_dir(self) -> Path:
        return self.cache or cache_root()


@dataclass(frozen=True)
class Archive:
    """A built archive: where it is and its SHA-256 (hex and, as Lambda reports it, base64)."""

    path: Path
    sha256: str
    files: tuple[str, ...] = field(default=())

    @property
    def sha256_base64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


def is_excluded(relative: Path) -> bool:
    """True for caches, compiled files, tests and the requirements file itself."""
    if any(part in EXCLUDED_DIRS for part in relative.parts[:-1]):
        return True
    name = relative.name
    return name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES) or name in EXCLUDED_DIRS


def iter_files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(archive name, file)`` for every file under ``root`` that belongs in an archive."""
    for dirpath, dirnames, filenames in os.walk(root):
        # Pruning here keeps os.walk out of large caches instead of filtering them later.
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
        for filename in filenames:
            path = Path(dirpath) / filename
            relative = path.relative_to(root)
            if not is_excluded(relative) and path.is_file():
                yield relative.as_posix(), path


def requirements_hash(requirements: bytes, platform: str, python_version: str) -> str:
    """The cache key of one installed requirements set."""
    digest = hashlib.sha256()
    for part in (platform.encode(), python_version.encode(), requirements):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:32]


def pip_command(requirements: Path, target: Path, platform: str, python_version: str) -> list[str]:
    """pip, told to fetch only wheels built for Lambda's platform (no local compiling)."""
    return [
        sys.executable, "-m", "pip", "install",
        "--requirement", str(requirements),
        "--target", str(target),
        "--platform", platform,
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
    ]


def install_requirements(spec: PackageSpec, runner: Runner = subprocess.run) -> Path | None:
    """The folder holding the source folder's installed requirements, installing them if needed.

    Returns None when there is nothing to install. The install goes to a temporary folder
    renamed into place only on success, so an interrupted install is never mistaken for
    a finished one.
    """
    requirements = spec.source / "requirements.txt"
    python_version = spec.python_version
    if python_version is None or not requirements.is_file():
        return None
    content = requirements.read_bytes()
    if not any(line.strip() and not line.strip().startswith("#") for line in content.decode().splitlines()):
        return None
    platform = PIP_PLATFORMS[spec.architecture]
    target = spec.cache_dir / "requirements" / requirements_hash(content, platform, python_version)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    result = runner(
        pip_command(requirements, staging, platform, python_version), capture_output=True, text=True
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackagingError(
            f"pip could not install {requirements} for {platform} / Python {python_version}: "
            f"{(result.stderr or result.stdout).strip()[-1500:]}\n"
            "Lambda needs binary wheels for its platform; pin a version that publishes "
            "manylinux wheels or drop the package."
        )
    try:
        staging.rename(target)
    except OSError:
        # Another plan finished the same install first; its copy is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.create_system = 3  # unix, so the permission bits below are honoured
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def zip_bytes(entries: Mapping[str, bytes | Path]) -> bytes:
    """A deterministic zip of ``{archive name: contents or file}``, entries in sorted order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            source = entries[name]
            if isinstance(source, Path):
                executable = bool(source.stat().st_mode & stat.S_IXUSR)
                data = source.read_bytes()
            else:
                executable, data = False, source
            mode = EXECUTABLE_MODE if executable else FILE_MODE
            archive.writestr(_entry(name, mode), data, compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


RUNTIME_PACKAGE = "harbor_runtime"


def uses_runtime_package(files: Mapping[str, Path]) -> bool:
    """True when a Python source imports ``harbor_runtime`` (and so needs it in the archive)."""
    pattern = f"import {RUNTIME_PACKAGE}".encode(), f"from {RUNTIME_PACKAGE}".encode()
    return any(
        name.endswith(".py") and any(p in path.read_bytes() for p in pattern) for name, path in files.items()
    )


def runtime_package_files() -> dict[str, Path]:
    """``harbor_runtime``'s files, as they go into an archive (``harbor_runtime/...``)."""
    import harbor_runtime

    root = Path(harbor_runtime.__file__).parent
    return {f"{RUNTIME_PACKAGE}/{name}": path for name, path in iter_files(root)}


def collect(spec: PackageSpec, runner: Runner = subprocess.run) -> dict[str, Path]:
    """Every file the archive will hold: installed requirements, then the sources over them.

    Python sources that import ``harbor_runtime`` get it packaged with them, so the handler
    imports it in Lambda exactly as in tests.
    """
    if not spec.source.is_dir():
        raise PackagingError(f"the function bundle folder {spec.source} does not exist")
    entries: dict[str, Path] = {}
    installed = install_requirements(spec, runner)
    if installed is not None:
        entries.update(iter_files(installed))
    sources = dict(iter_files(spec.source))
    if spec.python_version is not None and uses_runtime_package(sources):
        entries.update(runtime_package_files())
    entries.update(sources)
    return entries


def build_archive(
    spec: PackageSpec,
    extra_files: Mapping[str, bytes] | None = None,
    runner: Runner = subprocess.run,
) -> Archive:
    """Package ``spec.source`` (and ``extra_files`` at the archive root) into a cached zip.

    The archive is stored under its own SHA-256, so building it again is free and two
    functions sharing a folder and links share one file.
    """
    files = collect(spec, runner)
    signature = _signature(spec, files, extra_files or {})
    if signature in _BUILT and _BUILT[signature].path.is_file():
        return _BUILT[signature]
    entries: dict[str, bytes | Path] = dict(files)
    for name in extra_files or {}:
        if name in entries:
            raise PackagingError(
                f"{spec.source} already contains {name!r}, which the function needs for its "
                "own link data; rename or remove that file"
            )
    entries.update(extra_files or {})
    data = zip_bytes(entries)
    digest = hashlib.sha256(data).hexdigest()
    path = spec.cache_dir / "archives" / f"{digest}.zip"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
    _BUILT[signature] = Archive(path=path, sha256=digest, files=tuple(sorted(entries)))
    return _BUILT[signature]


# Archives built in this process, by what went into them: functions sharing a folder and
# links (every route of an API) zip it once per plan instead of once each.
_BUILT: dict[str, Archive] = {}


def _signature(spec: PackageSpec, files: Mapping[str, Path], extra_files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256(str(spec.cache_dir).encode())
    for name in sorted(files):
        info = files[name].stat()
        digest.update(f"{name}\0{files[name]}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_mode}\n".encode())
    for name in sorted(extra_files):
        digest.update(f"{name}\0".encode() + hashlib.sha256(extra_files[name]).digest())
    return digest.hexdigest()


def module_file(source: Path, module: Sequence[str], runtime: str) -> Path | None:
    """The file that defines ``module`` (path parts) for ``runtime``, or None if none does."""
    base = source.joinpath(*module)
    if runtime.startswith("python"):
        candidates = [base.with_suffix(".py"), base / "__init__.py"]
    else:
        candidates = [base.with_suffix(ext) for ext in (".js", ".mjs", ".cjs")]
    return next((c for c in candidates if c.is_file()), None)
