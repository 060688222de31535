"""Packaging: deterministic archives, excluded caches and tests, requirements installed once."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from components.packaging import (
    FIXED_DATE_TIME,
    PackageSpec,
    PackagingError,
    build_archive,
    install_requirements,
    requirements_hash,
)

ROOT = Path(__file__).resolve().parent.parent


class FakePip:
    """Stands in for pip: records each command and writes one module into --target."""

    def __init__(self, returncode: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        self.commands.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "dep").mkdir(parents=True, exist_ok=True)
        (target / "dep" / "__init__.py").write_text("VALUE = 1\n")
        (target / "dep" / "__pycache__").mkdir(exist_ok=True)
        (target / "dep" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
        return subprocess.CompletedProcess(command, self.returncode, "", "no matching distribution")


def make_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "items.py").write_text("def create(event, context):\n    return 1\n")
    (folder / "lib").mkdir()
    (folder / "lib" / "util.py").write_text("X = 1\n")
    (folder / "requirements.txt").write_text("dep==1.0\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "items.cpython-312.pyc").write_bytes(b"compiled")
    (folder / "lib" / "old.pyc").write_bytes(b"compiled")
    (folder / "tests").mkdir()
    (folder / "tests" / "test_items.py").write_text("def test(): pass\n")
    (folder / ".pytest_cache").mkdir()
    (folder / ".pytest_cache" / "README.md").write_text("cache")
    return folder


def test_same_sources_give_byte_identical_archives(tmp_path):
    first = make_source(tmp_path / "a")
    # A second checkout: same contents, written in another order at another time.
    second = tmp_path / "b"
    second.mkdir()
    for path in sorted(first.rglob("*"), reverse=True):
        target = second / path.relative_to(first)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            os.utime(target, (1_000_000_000, 1_000_000_000))
    one = build_archive(PackageSpec(first, cache=tmp_path / "cache1"), {"resource.enc": b"k"}, FakePip())
    two = build_archive(PackageSpec(second, cache=tmp_path / "cache2"), {"resource.enc": b"k"}, FakePip())
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.sha256 == two.sha256


class _ReversedScandir:
    """``os.scandir`` listing its entries in reverse, as another file system might."""

    def __init__(self, scandir, path) -> None:
        with scandir(path) as listing:
            self._entries = iter(sorted(listing, key=lambda entry: entry.name, reverse=True))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._entries)

    def close(self) -> None:
        return None


def test_entries_are_sorted_whatever_order_the_file_system_lists_them_in(tmp_path, monkeypatch):
    source = make_source(tmp_path / "src")
    for name in ("zeta.py", "alpha.py", "Mid.py", "lib/a.py", "lib/z/deep.py"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("X = 1\n")
    natural = build_archive(PackageSpec(source, cache=tmp_path / "natural"), {"resource.enc": b"k"}, FakePip())

    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": _ReversedScandir(scandir, path))
    assert [e.name for e in os.scandir(source)][:2] == ["zeta.py", "tests"]  # the patch is in effect
    reversed_listing = build_archive(
        PackageSpec(source, cache=tmp_path / "reversed"), {"resource.enc": b"k"}, FakePip()
    )

    with zipfile.ZipFile(reversed_listing.path) as archive:
        names = archive.namelist()
    assert names == sorted(names)
    assert {"Mid.py", "alpha.py", "zeta.py", "lib/a.py", "lib/z/deep.py", "resource.enc"} <= set(names)
    assert reversed_listing.path.read_bytes() == natural.path.read_bytes()


def test_changed_source_changes_the_archive(tmp_path):
    source = make_source(tmp_path / "src")
    before = build_archive(PackageSpec(source, cache=tmp_path / "c"), runner=FakePip())
    (source / "items.py").write_text("def create(event, context):\n    return 2\n")
    after = build_archive(PackageSpec(source, cache=tmp_path / "c"), runner=FakePip())
    assert before.sha256 != after.sha256


def test_archive_leaves_out_caches_compiled_files_and_tests(tmp_path):
    source = make_source(tmp_path / "src")
    archive = build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    with zipfile.ZipFile(archive.path) as zf:
        names = zf.namelist()
    assert names == sorted(names)
    assert set(names) == {"dep/__init__.py", "items.py", "lib/util.py", "resource.enc"}


def test_entries_have_fixed_timestamps_and_permissions(tmp_path):
    source = make_source(tmp_path / "src")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o700)
    archive = build_archive(PackageSpec(source, cache=tmp_path / "c"), runner=FakePip())
    with zipfile.ZipFile(archive.path) as zf:
        infos = {info.filename: info for info in zf.infolist()}
    assert {info.date_time for info in infos.values()} == {FIXED_DATE_TIME}
    assert (infos["items.py"].external_attr >> 16) & 0o777 == 0o644
    assert (infos["run.sh"].external_attr >> 16) & 0o777 == 0o755


def test_requirements_install_for_lambdas_platform_with_binary_wheels_only(tmp_path):
    source = make_source(tmp_path / "src")
    pip = FakePip()
    install_requirements(PackageSpec(source, "python3.12", "arm64", cache=tmp_path / "c"), pip)
    install_requirements(PackageSpec(source, "python3.13", "x86_64", cache=tmp_path / "c"), pip)
    arm, x86 = pip.commands
    assert arm[arm.index("--platform") + 1] == "manylinux2014_aarch64"
    assert arm[arm.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in arm
    assert x86[x86.index("--platform") + 1] == "manylinux2014_x86_64"
    assert x86[x86.index("--python-version") + 1] == "3.13"


def test_requirements_are_installed_once_per_requirements_hash(tmp_path):
    source = make_source(tmp_path / "src")
    pip = FakePip()
    spec = PackageSpec(source, cache=tmp_path / "c")
    first = install_requirements(spec, pip)
    again = install_requirements(spec, pip)
    assert first == again and len(pip.commands) == 1
    assert first.name == requirements_hash(b"dep==1.0\n", "manylinux2014_aarch64", "3.12")
    (source / "requirements.txt").write_text("dep==2.0\n")
    install_requirements(spec, pip)
    assert len(pip.commands) == 2


def test_empty_requirements_or_node_runtimes_install_nothing(tmp_path):
    source = make_source(tmp_path / "src")
    pip = FakePip()
    assert install_requirements(PackageSpec(source, "nodejs22.x", cache=tmp_path / "c"), pip) is None
    (source / "requirements.txt").write_text("# nothing yet\n\n")
    assert install_requirements(PackageSpec(source, cache=tmp_path / "c"), pip) is None
    assert pip.commands == []


def test_failed_install_explains_and_leaves_no_cache_behind(tmp_path):
    source = make_source(tmp_path / "src")
    with pytest.raises(PackagingError, match=r"manylinux2014_aarch64.*no matching distribution"):
        install_requirements(PackageSpec(source, cache=tmp_path / "c"), FakePip(returncode=1))
    assert list((tmp_path / "c" / "requirements").iterdir()) == []


def test_a_source_file_named_like_the_link_file_is_refused(tmp_path):
    source = make_source(tmp_path / "src")
    (source / "resource.enc").write_bytes(b"mine")
    with pytest.raises(PackagingError, match="rename or remove"):
        build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())


def test_real_handler_folder_with_real_requirements_packages_identically_twice(tmp_path):
    """app/functions with its real requirements (sst-sdk from PyPI, installed once, cached)."""
    source = ROOT / "app" / "functions"
    cache = ROOT / ".build" / "harbor"
    one = build_archive(PackageSpec(source, cache=cache), {"resource.enc": b"key"})
    two = build_archive(PackageSpec(source, cache=cache), {"resource.enc": b"key"})
    assert one.path.read_bytes() == two.path.read_bytes()
    assert "items.py" in one.files and "sst/__init__.py" in one.files
    assert not [name for name in one.files if name.endswith(".pyc") or "__pycache__" in name]
