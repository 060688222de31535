"""Packaging: deterministic archives, locked requirements, a content cache that stays bounded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components.aws import packaging
from components.aws.packaging import (
    FIXED_DATE_TIME,
    PackageSpec,
    PackagingError,
    ZipEntry,
    build_archive,
    forget_process_cache,
    install_requirements,
    prune_cache,
    read_lock,
    requirements_key,
)

ROOT = Path(__file__).resolve().parent.parent
HASH_A = "--hash=sha256:" + "a" * 64
HASH_B = "--hash=sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    """Each test starts as a new plan process would: nothing built in memory yet."""
    forget_process_cache()
    yield
    forget_process_cache()


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
    (folder / "requirements.in").write_text("dep>=1\n")
    (folder / "requirements.txt").write_text(f"dep==1.0 \\\n    {HASH_A}\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "items.cpython-312.pyc").write_bytes(b"compiled")
    (folder / "lib" / "old.pyc").write_bytes(b"compiled")
    (folder / "tests").mkdir()
    (folder / "tests" / "test_items.py").write_text("def test(): pass\n")
    (folder / ".pytest_cache").mkdir()
    (folder / ".pytest_cache" / "README.md").write_text("cache")
    return folder


def copy_tree_in_reverse(first: Path, second: Path) -> None:
    """A second checkout: same contents, written in another order at another time."""
    second.mkdir()
    for path in sorted(first.rglob("*"), reverse=True):
        target = second / path.relative_to(first)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            os.utime(target, (1_000_000_000, 1_000_000_000))


def test_same_sources_give_byte_identical_archives(tmp_path):
    first = make_source(tmp_path / "a")
    second = tmp_path / "b"
    copy_tree_in_reverse(first, second)
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


def test_archive_holds_exactly_the_sources_dependencies_and_link_file(tmp_path):
    source = make_source(tmp_path / "src")
    archive = build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    with zipfile.ZipFile(archive.path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        contents = {name: zf.read(name) for name in names}
    assert names == sorted(names)
    assert set(names) == {"dep/__init__.py", "items.py", "lib/util.py", "resource.enc"}
    assert contents["items.py"] == (source / "items.py").read_bytes()
    assert contents["resource.enc"] == b"k"
    assert contents["dep/__init__.py"] == b"VALUE = 1\n"
    assert archive.files == tuple(names)


def test_entries_are_sorted_even_when_the_file_system_lists_them_in_another_order(tmp_path, monkeypatch):
    source = make_source(tmp_path / "src")
    for name in ("b.py", "a.py", "c.py"):
        (source / name).write_text(name)
    # A link file that sorts first: it is added to the bundle's entries, not appended.
    first = build_archive(PackageSpec(source, cache=tmp_path / "c1"), {"0.enc": b"k"}, FakePip())
    real_walk = os.walk

    def reversed_walk(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            dirnames.reverse()
            yield dirpath, dirnames, list(reversed(filenames))

    monkeypatch.setattr(packaging.os, "walk", reversed_walk)
    forget_process_cache()
    second = build_archive(PackageSpec(source, cache=tmp_path / "c2"), {"0.enc": b"k"}, FakePip())
    with zipfile.ZipFile(second.path) as zf:
        names = zf.namelist()
    assert names[0] == "0.enc" and names == sorted(names)
    assert second.path.read_bytes() == first.path.read_bytes()


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


def test_non_ascii_names_round_trip(tmp_path):
    source = make_source(tmp_path / "src")
    (source / "données.txt").write_text("é")
    archive = build_archive(PackageSpec(source, cache=tmp_path / "c"), runner=FakePip())
    with zipfile.ZipFile(archive.path) as zf:
        assert zf.read("données.txt") == "é".encode()


# -- locked requirements -------------------------------------------------------------------

def test_requirements_install_the_lock_for_lambdas_platform_with_hashes_and_binary_wheels_only(tmp_path):
    source = make_source(tmp_path / "src")
    pip = FakePip()
    install_requirements(PackageSpec(source, "python3.12", "arm64", cache=tmp_path / "c"), pip)
    install_requirements(PackageSpec(source, "python3.13", "x86_64", cache=tmp_path / "c"), pip)
    arm, x86 = pip.commands
    assert arm[arm.index("--platform") + 1] == "manylinux2014_aarch64"
    assert arm[arm.index("--python-version") + 1] == "3.12"
    assert {"--only-binary=:all:", "--require-hashes", "--no-deps"} <= set(arm)
    assert x86[x86.index("--platform") + 1] == "manylinux2014_x86_64"
    assert x86[x86.index("--python-version") + 1] == "3.13"


def test_the_install_cache_is_keyed_on_what_the_lock_resolved_not_its_text(tmp_path):
    source = make_source(tmp_path / "src")
    pip = FakePip()
    spec = PackageSpec(source, cache=tmp_path / "c")
    first = install_requirements(spec, pip)
    assert first.name == requirements_key(read_lock(source / "requirements.txt"), "manylinux2014_aarch64", "3.12")
    # Comments, spacing, line continuations, the case of a name and where pip looks are not
    # what was resolved.
    (source / "requirements.txt").write_text(
        f"# regenerated\n--index-url https://mirror.example/simple\nDep == 1.0   {HASH_A}  # via app\n"
    )
    assert install_requirements(spec, pip) == first and len(pip.commands) == 1
    # A new hash (a re-uploaded wheel) or a new version is.
    (source / "requirements.txt").write_text(f"dep==1.0 {HASH_A} {HASH_B}\n")
    second = install_requirements(spec, pip)
    (source / "requirements.txt").write_text(f"dep==1.1 {HASH_A}\n")
    third = install_requirements(spec, pip)
    assert len({first, second, third}) == 3 and len(pip.commands) == 3


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("dep>=1.0 " + HASH_A, "'dep>=1.0' is not locked"),
        ("dep==1.0", "'dep==1.0' is not locked"),
        ("dep", "'dep' is not locked"),
        ("-r ../shared.txt", "option '-r' is not supported"),
        ("-e ./local", "option '-e' is not supported"),
    ],
)
def test_an_unlocked_requirement_is_refused_with_its_file_and_line(tmp_path, line, problem):
    source = make_source(tmp_path / "src")
    (source / "requirements.txt").write_text(f"# lock\nok==1 {HASH_A}\n{line}\n")
    with pytest.raises(PackagingError, match=rf"requirements.txt:3: {re.escape(problem)}"):
        install_requirements(PackageSpec(source, cache=tmp_path / "c"), FakePip())


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


def handler_lock_sources() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*requirements.in"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    return [ROOT / name for name in listed]


def test_every_handler_folder_has_a_lock_that_pins_its_requirements_with_hashes():
    sources = handler_lock_sources()
    assert ROOT / "app" / "functions" / "requirements.in" in sources
    for source in sources:
        locked = {r.name: r for r in read_lock(source.with_name("requirements.txt"))}
        wanted = [Requirement(line) for line in source.read_text().splitlines()
                  if line.strip() and not line.startswith("#")]
        for requirement in wanted:
            pinned = locked[canonicalize_name(requirement.name)]
            assert requirement.specifier.contains(pinned.version), (source, requirement, pinned.version)
        assert all(r.hashes for r in locked.values())


def test_the_program_lock_pins_every_dependency_of_pyproject_within_its_range():
    """A dependency added to pyproject.toml without running .ci/lock fails here, not on CI."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = {r.name: r for r in read_lock(ROOT / "requirements.lock")}
    declared = [Requirement(d) for d in project["dependencies"] + project["optional-dependencies"]["test"]]
    missing = [str(r) for r in declared if canonicalize_name(r.name) not in locked]
    assert missing == [], f"not in requirements.lock (run .ci/lock): {missing}"
    outside = [f"{r} (locked {locked[canonicalize_name(r.name)].version})" for r in declared
               if not r.specifier.contains(locked[canonicalize_name(r.name)].version, prereleases=True)]
    assert outside == [], f"requirements.lock is older than pyproject.toml (run .ci/lock): {outside}"


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_real_handler_folder_installs_from_its_lock_for_each_lambda_architecture(architecture):
    """app/functions with its real lock (sst-sdk and pycryptodomex from PyPI, hash-checked, cached)."""
    source = ROOT / "app" / "functions"
    cache = ROOT / ".build" / "harbor"
    one = build_archive(PackageSpec(source, architecture=architecture, cache=cache), {"resource.enc": b"key"})
    forget_process_cache()
    two = build_archive(PackageSpec(source, architecture=architecture, cache=cache), {"resource.enc": b"key"})
    assert one.path.read_bytes() == two.path.read_bytes()
    assert "items.py" in one.files and "sst/__init__.py" in one.files
    machine = {"arm64": "AArch64", "x86_64": "X86-64"}[architecture]
    native = [name for name in one.files if name.endswith(".so")]
    assert native, "pycryptodomex ships compiled modules"
    with zipfile.ZipFile(one.path) as zf:
        header = zf.read(native[0])[:20]
    # ELF e_machine: 0xB7 is AArch64, 0x3E is x86-64.
    assert header[18] == {"AArch64": 0xB7, "X86-64": 0x3E}[machine]
    assert not [name for name in one.files if name.endswith(".pyc") or "__pycache__" in name]


# -- the content cache ---------------------------------------------------------------------

class CountingCompression:
    """Counts every file compressed, by name."""

    def __init__(self, monkeypatch) -> None:
        self.names: list[str] = []
        real = ZipEntry.of.__func__

        def counting(cls, name, content, executable=False):
            self.names.append(name)
            return real(cls, name, content, executable)

        monkeypatch.setattr(ZipEntry, "of", classmethod(counting))


def test_a_bundle_is_compressed_once_however_many_link_sets_and_stages_use_it(tmp_path, monkeypatch):
    source = make_source(tmp_path / "src")
    compressed = CountingCompression(monkeypatch)
    archives = [
        build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": f"{stage}-{i}".encode()}, FakePip())
        for stage in ("dev", "prod", "pr-12") for i in range(3)
    ]
    assert len({a.sha256 for a in archives}) == 9
    assert sorted(compressed.names) == sorted(["dep/__init__.py", "items.py", "lib/util.py"] + ["resource.enc"] * 9)
    assert len(list((tmp_path / "c" / "bundles").iterdir())) == 1


def test_a_second_plan_of_unchanged_sources_compresses_nothing(tmp_path, monkeypatch):
    source = make_source(tmp_path / "src")
    first = build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    forget_process_cache()  # the next plan is a new process
    compressed = CountingCompression(monkeypatch)
    second = build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    assert compressed.names == []
    assert (second.path, second.sha256, second.files) == (first.path, first.sha256, first.files)
    # A different link file reuses the bundle: only the link file is compressed.
    build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"other"}, FakePip())
    assert compressed.names == ["resource.enc"]


def test_the_cache_finds_content_not_paths_or_times(tmp_path, monkeypatch):
    first = make_source(tmp_path / "a")
    copy_tree_in_reverse(first, tmp_path / "b")
    one = build_archive(PackageSpec(first, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    forget_process_cache()
    compressed = CountingCompression(monkeypatch)
    two = build_archive(PackageSpec(tmp_path / "b", cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    assert compressed.names == [] and two.path == one.path


def test_a_damaged_bundle_is_rebuilt_not_trusted(tmp_path):
    source = make_source(tmp_path / "src")
    good = build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    forget_process_cache()
    for path in (tmp_path / "c" / "bundles").iterdir():
        path.write_bytes(b"truncated")
    good.path.unlink()
    again = build_archive(PackageSpec(source, cache=tmp_path / "c"), {"resource.enc": b"k"}, FakePip())
    assert again.sha256 == good.sha256 and again.path.is_file()


def cache_bytes(cache: Path) -> int:
    return sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())


def test_planning_many_stages_keeps_the_cache_within_its_bound(tmp_path, monkeypatch):
    source = make_source(tmp_path / "src")
    (source / "big.bin").write_bytes(os.urandom(200_000))  # incompressible: each archive is ~200 KB
    monkeypatch.setenv("HARBOR_CACHE_MAX_MB", "1")
    cache = tmp_path / "c"
    for stage in range(20):
        forget_process_cache()  # one plan process per stage
        build_archive(PackageSpec(source, cache=cache), {"resource.enc": f"stage-{stage}".encode()}, FakePip())
    assert cache_bytes(cache) <= 1024 * 1024
    # The shared layers survive: the latest stage's plan reused them.
    assert len(list((cache / "bundles").iterdir())) == 1
    assert len(list((cache / "requirements").iterdir())) == 1
    # Without a bound, the same plans would have kept every stage's archive (~4 MB).
    assert len(list((cache / "archives").glob("*.zip"))) < 20


def test_pruning_removes_the_least_recently_used_first_and_never_what_is_kept(tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    now = 1_800_000_000.0
    for index, name in enumerate(["old-but-used", "middle", "newest", "kept"]):
        path = archives / f"{name}.zip"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 1000 + index * 100, now - 1000 + index * 100))
    os.utime(archives / "old-but-used.zip", (now - 10, now - 10))  # used by the last plan
    os.utime(archives / "kept.zip", (now - 5000, now - 5000))
    removed = prune_cache(tmp_path, max_bytes=2500, max_age_seconds=10_000, keep=[archives / "kept.zip"], now=now)
    assert [p.name for p in removed] == ["middle.zip", "newest.zip"]
    assert sorted(p.name for p in archives.iterdir()) == ["kept.zip", "old-but-used.zip"]


def test_pruning_removes_entries_unused_for_longer_than_the_age_limit(tmp_path):
    (tmp_path / "requirements" / "abc").mkdir(parents=True)
    (tmp_path / "requirements" / "abc" / "mod.py").write_text("x")
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "recent.zip").write_bytes(b"x")
    now = time.time()
    os.utime(tmp_path / "requirements" / "abc", (now - 31 * 86400, now - 31 * 86400))
    removed = prune_cache(tmp_path, max_bytes=10**9, max_age_seconds=30 * 86400, now=now)
    assert removed == [tmp_path / "requirements" / "abc"]
    assert (tmp_path / "bundles" / "recent.zip").exists()


def test_a_cache_limit_that_is_not_a_number_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HARBOR_CACHE_MAX_MB", "lots")
    with pytest.raises(PackagingError, match="HARBOR_CACHE_MAX_MB and HARBOR_CACHE_MAX_AGE_DAYS must be numbers"):
        prune_cache(tmp_path)


def test_ci_and_every_workflow_install_the_program_from_the_lock():
    """No install of the project resolves versions of its own: the lock, then the project alone."""
    places = [ROOT / ".ci" / "run", *sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    for place in places:
        installs = [line.strip() for line in place.read_text().splitlines() if "pip install" in line]
        project = [line for line in installs if " -e " in f"{line} "]
        if not project:
            continue
        assert all("--no-deps" in line for line in project), (place.name, project)
        assert any("--require-hashes -r requirements.lock" in line for line in installs), (place.name, installs)
