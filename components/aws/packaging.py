"""Packaging: a deterministic Lambda zip from a source folder plus its locked requirements.

The same sources always give a byte-identical archive (fixed timestamps, fixed
permissions, sorted entries, fixed compression), so an unchanged function never
shows a diff. Caches, compiled files and tests stay out of the archive.

A ``requirements.txt`` in the folder must be a lock: every line ``name==version``
with the ``--hash`` of each distribution (``uv pip compile --generate-hashes`` or
``pip-compile --generate-hashes`` writes one). It is installed for Lambda's
platform and architecture with pip in hash-checking mode (manylinux wheels only,
never a local build), into a cache keyed on what the lock resolved to (names,
versions, hashes), the platform and the Python version: a new upstream release
never changes an archive unless the lock changes.

Work is cached by content in three layers under :func:`cache_root`:

- ``requirements/<key>``: the installed requirements of one lock, platform and Python.
- ``bundles/<key>.zip``: the folder and its requirements, compressed once, whatever
  stage or links use it (the key hashes every file's bytes, not paths or times).
- ``archives/<sha256>.zip``: what a function deploys, the bundle plus its link file;
  made by copying the bundle's compressed entries, so nothing is compressed twice.

Every entry is touched when used and the cache is pruned, least recently used first,
to ``HARBOR_CACHE_MAX_MB`` (default 256) and ``HARBOR_CACHE_MAX_AGE_DAYS`` (default 30),
never removing what the running plan uses.

Example::

    spec = PackageSpec(source=Path("app/functions"), runtime="python3.12", architecture="arm64")
    archive = build_archive(spec, extra_files={"resource.enc": encrypted})
    archive.path, archive.sha256
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# 1980-01-01 is the earliest time a zip entry can hold; any fixed value works.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
COMPRESS_LEVEL = 6  # zlib default; fixed so a zlib upgrade of defaults cannot change archives
# Part of every cache key: bump it when the archive layout or the install procedure changes.
PACKAGER_VERSION = "2"

EXCLUDED_DIRS = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".git",
     ".venv", "venv", "tests"}
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_FILES = frozenset({".DS_Store", "requirements.txt", "requirements.in"})

PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

DEFAULT_MAX_MB = 256
DEFAULT_MAX_AGE_DAYS = 30

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


def iter_files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(archive name, file)`` for every file under ``root`` that belongs in an archive."""
    top = str(root)
    for dirpath, dirnames, filenames in os.walk(top):
        # Pruning here keeps os.walk out of large caches instead of filtering them later.
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
        prefix = os.path.relpath(dirpath, top).replace(os.sep, "/") + "/" if dirpath != top else ""
        for filename in filenames:
            if filename in EXCLUDED_FILES or filename.endswith(EXCLUDED_SUFFIXES):
                continue
            path = os.path.join(dirpath, filename)
            if os.path.isfile(path):
                yield prefix + filename, Path(path)


# -- locked requirements -------------------------------------------------------------------

@dataclass(frozen=True)
class LockedRequirement:
    """One pinned line of a requirements lock: ``name==version [; marker]`` and its hashes."""

    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]

    def canonical(self) -> str:
        marker = f"; {self.marker}" if self.marker else ""
        return f"{self.name}=={self.version}{marker} " + " ".join(self.hashes)


# Options a lock may carry that change only where pip looks, not what it installs.
WHERE_FROM_OPTIONS = frozenset(
    {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host", "--only-binary",
     "--prefer-binary"}
)
_PINNED = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*===?\s*(?P<version>[^\s;]+)\s*(;(?P<marker>.*))?$"
)
_HASH = re.compile(r"--hash[=\s]+(?P<algo>sha256|sha384|sha512):(?P<digest>[0-9a-fA-F]+)")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with ``\\`` continuations joined and comments dropped, with their first line number."""
    buffer, first = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buffer:
            first = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            yield first, buffer.strip()
        buffer = ""
    if buffer.strip():
        yield first, buffer.strip()


def read_lock(path: Path) -> tuple[LockedRequirement, ...]:
    """The pinned requirements of a lock file, sorted by name; refuses anything unpinned.

    A range (``sst-sdk>=4``), a line without ``--hash``, or a URL or local path would let
    the installed code change without a change to the file, so each is refused with the
    line that needs fixing.
    """
    locked: dict[str, LockedRequirement] = {}
    for number, line in _logical_lines(path.read_text()):
        hashes = tuple(sorted(f"{m['algo']}:{m['digest'].lower()}" for m in _HASH.finditer(line)))
        requirement = _HASH.sub("", line).strip()
        if requirement.startswith("-"):
            option = re.split(r"[\s=]", requirement, maxsplit=1)[0]
            if option in WHERE_FROM_OPTIONS:
                continue  # where pip looks; the hashes decide what it may install
            raise PackagingError(
                f"{path}:{number}: option {option!r} is not supported in a Lambda requirements "
                "lock; keep pinned requirements with hashes (and index options) only"
            )
        match = _PINNED.match(requirement)
        if match is None or not hashes:
            raise PackagingError(
                f"{path}:{number}: {requirement!r} is not locked; Lambda requirements need exact "
                "versions with hashes: write the ranges in requirements.in and run "
                "`uv pip compile requirements.in --generate-hashes --universal -o requirements.txt`"
            )
        name = re.sub(r"[-_.]+", "-", match["name"]).lower()
        marker = (match["marker"] or "").strip()
        locked[f"{name}; {marker}"] = LockedRequirement(name, match["version"], marker, hashes)
    return tuple(locked[key] for key in sorted(locked))


def requirements_key(locked: Iterable[LockedRequirement], platform: str, python_version: str) -> str:
    """The cache key of one installed lock: what it resolved to, for a platform and a Python.

    Comments, order and spelling of the file do not count; a version or hash does.
    """
    digest = hashlib.sha256()
    for part in (PACKAGER_VERSION, platform, python_version, *(r.canonical() for r in locked)):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()[:32]


def pip_command(requirements: Path, target: Path, platform: str, python_version: str) -> list[str]:
    """pip, told to install exactly the lock (hashes checked, no resolving) as Lambda wheels."""
    return [
        sys.executable, "-m", "pip", "install",
        "--requirement", str(requirements),
        "--require-hashes",
        "--no-deps",
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
    locked = read_lock(requirements)
    if not locked:
        return None
    platform = PIP_PLATFORMS[spec.architecture]
    target = spec.cache_dir / "requirements" / requirements_key(locked, platform, python_version)
    if target.is_dir():
        _touch(target)
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
            "Lambda needs binary wheels for its platform, listed with their hashes in the lock; "
            "pin a version that publishes manylinux wheels, or regenerate the lock."
        )
    try:
        staging.rename(target)
    except OSError:
        # Another plan finished the same install first; its copy is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
    return target


# -- deterministic zips --------------------------------------------------------------------

@dataclass(frozen=True)
class ZipEntry:
    """One file of a zip, already compressed: written as is, never recompressed."""

    name: str
    mode: int
    crc: int
    size: int
    data: bytes  # raw deflate stream

    @classmethod
    def of(cls, name: str, content: bytes, executable: bool = False) -> ZipEntry:
        compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(content) + compressor.flush()
        mode = EXECUTABLE_MODE if executable else FILE_MODE
        return cls(name, mode, zlib.crc32(content), len(content), data)


_DOS_TIME = 0  # 00:00:00
_DOS_DATE = ((FIXED_DATE_TIME[0] - 1980) << 9) | (FIXED_DATE_TIME[1] << 5) | FIXED_DATE_TIME[2]
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_UTF8_FLAG = 0x800
_UNIX = 3


def write_zip(entries: Iterable[ZipEntry]) -> bytes:
    """A zip of ``entries`` sorted by name: fixed time, Unix permissions, deflate, no extras.

    Written by hand (the format is small) so that compressed entries can be copied from
    one archive into another without inflating and deflating them again.
    """
    ordered = sorted(entries, key=lambda e: e.name)
    if len(ordered) >= 0xFFFF:
        raise PackagingError(f"{len(ordered)} files is more than a Lambda zip written here may hold (65,534)")
    body, central = bytearray(), bytearray()
    for entry in ordered:
        name = entry.name.encode()
        flags = 0 if entry.name.isascii() else _UTF8_FLAG
        offset = len(body)
        body += _LOCAL.pack(0x04034B50, 20, flags, zlib.DEFLATED, _DOS_TIME, _DOS_DATE,
                            entry.crc, len(entry.data), entry.size, len(name), 0)
        body += name + entry.data
        central += _CENTRAL.pack(0x02014B50, (_UNIX << 8) | 20, 20, flags, zlib.DEFLATED, _DOS_TIME, _DOS_DATE,
                                 entry.crc, len(entry.data), entry.size, len(name), 0, 0, 0, 0,
                                 (stat.S_IFREG | entry.mode) << 16, offset)
        central += name
    if len(body) + len(central) >= 0xFFFFFFFF:
        raise PackagingError("the archive is over 4 GB; Lambda accepts at most 250 MB unzipped")
    end = _END.pack(0x06054B50, 0, 0, len(ordered), len(ordered), len(central), len(body), 0)
    return bytes(body + central + end)


def read_zip_entries(data: bytes) -> list[ZipEntry]:
    """The compressed entries of a zip written by :func:`write_zip`, without inflating them."""
    end = _END.unpack_from(data, len(data) - _END.size)
    count, size, offset = end[3], end[5], end[6]
    entries, position = [], offset
    for _ in range(count):
        fields = _CENTRAL.unpack_from(data, position)
        crc, compressed, uncompressed, name_length = fields[7], fields[8], fields[9], fields[10]
        external, local = fields[15], fields[16]
        name = data[position + _CENTRAL.size:position + _CENTRAL.size + name_length].decode()
        position += _CENTRAL.size + name_length + fields[11] + fields[12]
        local_fields = _LOCAL.unpack_from(data, local)
        start = local + _LOCAL.size + local_fields[9] + local_fields[10]
        entries.append(ZipEntry(name, (external >> 16) & 0o777, crc, uncompressed, data[start:start + compressed]))
    assert position == offset + size, "central directory size does not match its entries"
    return entries


def zip_bytes(entries: Mapping[str, bytes | Path]) -> bytes:
    """A deterministic zip of ``{archive name: contents or file}``, entries in sorted order."""
    return write_zip(_entry(name, source) for name, source in entries.items())


def _entry(name: str, source: bytes | Path) -> ZipEntry:
    if isinstance(source, Path):
        return ZipEntry.of(name, source.read_bytes(), bool(source.stat().st_mode & stat.S_IXUSR))
    return ZipEntry.of(name, source)


# -- building archives ---------------------------------------------------------------------

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


def collect(spec: PackageSpec, runner: Runner = subprocess.run) -> tuple[dict[str, Path], dict[str, Path], str]:
    """Every file the archive will hold: the installed requirements and the sources (which
    win where both have a name), plus the key of the requirements ("" without any).

    Python sources that import ``harbor_runtime`` get it packaged with them (counted as
    sources), so the handler imports it in Lambda exactly as in tests.
    """
    if not spec.source.is_dir():
        raise PackagingError(f"the function bundle folder {spec.source} does not exist")
    installed = install_requirements(spec, runner)
    sources = dict(iter_files(spec.source))
    if spec.python_version is not None and uses_runtime_package(sources):
        sources = {**runtime_package_files(), **sources}
    if installed is None:
        return {}, sources, ""
    if installed not in _LISTED:
        # An installed requirements folder never changes once in place: list it once.
        _LISTED[installed] = dict(iter_files(installed))
    return {k: v for k, v in _LISTED[installed].items() if k not in sources}, sources, installed.name


def bundle_key(sources: Mapping[str, Path], requirements: str) -> str:
    """The content key of a bundle: each source file's name, executable bit and bytes.

    Installed requirements are covered by their own key (the lock they came from), so
    only the source folder's files are read; where the folder lives does not count.
    """
    digest = hashlib.sha256(f"bundle {PACKAGER_VERSION} {requirements}\n".encode())
    for name in sorted(sources):
        content, executable = _file_digest(sources[name])
        digest.update(f"{name}\0{'x' if executable else '-'}\0{content}\n".encode())
    return digest.hexdigest()


def build_archive(
    spec: PackageSpec,
    extra_files: Mapping[str, bytes] | None = None,
    runner: Runner = subprocess.run,
) -> Archive:
    """Package ``spec.source`` (and ``extra_files`` at the archive root) into a cached zip.

    The folder is compressed once into a bundle shared by every function, stage and link
    set that packages it; each archive is that bundle's compressed entries plus the extra
    files. The archive is stored under its own SHA-256 and found again by the key of what
    went into it, so a plan that changed nothing compresses nothing.
    """
    extra_files = dict(extra_files or {})
    installed, sources, requirements = collect(spec, runner)
    files = {**installed, **sources}
    for name in extra_files:
        if name in files:
            raise PackagingError(
                f"{spec.source} already contains {name!r}, which the function needs for its "
                "own link data; rename or remove that file"
            )
    cache = spec.cache_dir
    bundle = bundle_key(sources, requirements)
    digest = hashlib.sha256(f"archive {bundle}\n".encode())
    for name in sorted(extra_files):
        digest.update(f"{name}\0{hashlib.sha256(extra_files[name]).hexdigest()}\n".encode())
    key = digest.hexdigest()

    found = _BUILT.get((cache, key))
    if found is None or not found.path.is_file():
        found = _find_archive(cache, key)
    if found is None:
        entries = [*_bundle_entries(cache, bundle, files), *(ZipEntry.of(n, b) for n, b in extra_files.items())]
        data = write_zip(entries)
        sha = hashlib.sha256(data).hexdigest()
        path = cache / "archives" / f"{sha}.zip"
        if not path.is_file():
            _write_atomically(path, data)
        found = Archive(path=path, sha256=sha, files=tuple(sorted([*files, *extra_files])))
        ref = json.dumps({"sha256": sha, "files": found.files}, separators=(",", ":"))
        _write_atomically(cache / "archives" / f"{key}.ref", ref.encode())
        _BUILT[(cache, key)] = found
        _USED.update({path, cache / "archives" / f"{key}.ref", cache / "bundles" / f"{bundle}.zip"})
        prune_cache(cache, keep=_USED)
    return found


# What this process built or used, by (cache, key): functions sharing a folder and links
# (every route of an API) resolve once per plan, and pruning never removes them.
_BUILT: dict[tuple[Path, str], Archive] = {}
_USED: set[Path] = set()
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_BUNDLES: dict[tuple[Path, str], list[ZipEntry]] = {}
_LISTED: dict[Path, dict[str, Path]] = {}


def forget_process_cache() -> None:
    """Forget what this process built, as a new plan process would (the disk cache stays)."""
    for memo in (_BUILT, _USED, _DIGESTS, _BUNDLES, _LISTED):
        memo.clear()


def _file_digest(path: Path) -> tuple[str, bool]:
    """A file's SHA-256 and executable bit, read once per process while it is unchanged."""
    info = path.stat()
    memo = (str(path), info.st_ino, info.st_size, info.st_mtime_ns)
    if memo not in _DIGESTS:
        _DIGESTS[memo] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _DIGESTS[memo], bool(info.st_mode & stat.S_IXUSR)


def _find_archive(cache: Path, key: str) -> Archive | None:
    ref = cache / "archives" / f"{key}.ref"
    try:
        recorded = json.loads(ref.read_text())
        sha, names = str(recorded["sha256"]), tuple(recorded["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = cache / "archives" / f"{sha}.zip"
    if not path.is_file():
        return None
    _touch(ref, path)
    _USED.update({ref, path})
    archive = Archive(path=path, sha256=sha, files=names)
    _BUILT[(cache, key)] = archive
    return archive


def _bundle_entries(cache: Path, bundle: str, files: Mapping[str, Path]) -> list[ZipEntry]:
    """The compressed entries of a bundle: from this process, from disk, or compressed now."""
    if (cache, bundle) in _BUNDLES:
        return _BUNDLES[(cache, bundle)]
    path = cache / "bundles" / f"{bundle}.zip"
    try:
        entries = read_zip_entries(path.read_bytes())
        _touch(path)
    except (OSError, struct.error, UnicodeDecodeError, AssertionError):
        entries = [_entry(name, source) for name, source in sorted(files.items())]
        _write_atomically(path, write_zip(entries))
    _USED.add(path)
    _BUNDLES[(cache, bundle)] = entries
    return entries


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def _touch(*paths: Path) -> None:
    """Mark cache entries as just used: pruning removes the least recently used first."""
    now = time.time()
    for path in paths:
        with contextlib.suppress(OSError):
            os.utime(path, (now, now))


# -- pruning -------------------------------------------------------------------------------

def cache_limits() -> tuple[int, float]:
    """(bytes, seconds): the size and age the cache is pruned to, from the environment."""
    try:
        megabytes = float(os.environ.get("HARBOR_CACHE_MAX_MB") or DEFAULT_MAX_MB)
        days = float(os.environ.get("HARBOR_CACHE_MAX_AGE_DAYS") or DEFAULT_MAX_AGE_DAYS)
    except ValueError as error:
        raise PackagingError(
            f"HARBOR_CACHE_MAX_MB and HARBOR_CACHE_MAX_AGE_DAYS must be numbers: {error}"
        ) from None
    return int(megabytes * 1024 * 1024), days * 86400


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def prune_cache(
    cache: Path,
    *,
    max_bytes: int | None = None,
    max_age_seconds: float | None = None,
    keep: Iterable[Path] = (),
    now: float | None = None,
) -> list[Path]:
    """Remove cache entries unused for ``max_age_seconds``, then the least recently used
    until the cache holds at most ``max_bytes``; never what is in ``keep``. Returns what
    was removed.

    Every plan needs only the archives of its own stage, rebuilt from the bundles when
    pruned; the bundles and installed requirements are shared, so they last longest.
    """
    default_bytes, default_age = cache_limits()
    max_bytes = default_bytes if max_bytes is None else max_bytes
    max_age_seconds = default_age if max_age_seconds is None else max_age_seconds
    now = time.time() if now is None else now
    kept = {Path(p) for p in keep}
    candidates: list[tuple[float, Path, int]] = []
    for folder in ("archives", "bundles", "requirements"):
        directory = cache / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name.startswith("."):
                continue  # an install or write in progress
            try:
                candidates.append((path.stat().st_mtime, path, _size(path)))
            except OSError:
                continue
    total = sum(size for _, _, size in candidates)
    removed: list[Path] = []
    for used, path, size in sorted(candidates, key=lambda c: c[0]):
        if path in kept:
            continue
        if now - used <= max_age_seconds and total <= max_bytes:
            break
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


def module_file(source: Path, module: Sequence[str], runtime: str) -> Path | None:
    """The file that defines ``module`` (path parts) for ``runtime``, or None if none does."""
    base = source.joinpath(*module)
    if runtime.startswith("python"):
        candidates = [base.with_suffix(".py"), base / "__init__.py"]
    else:
        candidates = [base.with_suffix(ext) for ext in (".js", ".mjs", ".cjs")]
    return next((c for c in candidates if c.is_file()), None)
