"""Shared fixtures: run the whole program, or a few components, under the AWS mocks."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from shared_plans import PlanCache, patched_by_test

from infra.harness import Plan, run_mocked, run_program

ROOT = Path(__file__).resolve().parent.parent
APP = "harbor"


# The provider SDKs are half a million long-lived Python objects (classes, enums, type hints),
# and every full pass of the cyclic garbage collector walks all of them again: left alone, that
# is over half the suite's CPU time. Freezing what is alive after collection, and again at the
# end of each test file, takes those objects out of the collector's passes; what the tests
# leave as garbage is still collected before each freeze.
def pytest_collection_finish(session: pytest.Session) -> None:
    global _frozen_after_full_pass
    gc.collect()
    gc.freeze()
    _frozen_after_full_pass = gc.get_freeze_count()


# Frozen objects that later become garbage in a cycle are not reclaimed while frozen (moto's
# backends, replaced by the next test, are the bulk), so once the frozen heap has grown by
# this many objects since the last full pass, everything is thawed and collected once (about
# two seconds) before freezing again: memory stays bounded at a few hundred megabytes more.
_FROZEN_GROWTH = 1_000_000
# Objects in the oldest generation, not frozen, that make a test end with a pass of its own.
_OLD_OBJECTS = 100_000
_frozen_after_full_pass = 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    global _frozen_after_full_pass
    yield
    # After teardown, once the test's fixtures are released. A pass costs tens of
    # milliseconds even on a small heap, so it runs at the end of each test file, or sooner
    # when a test left many long-lived objects (the first plan imports much of the SDK).
    if nextitem is not None and nextitem.module is item.module and len(gc.get_objects(2)) < _OLD_OBJECTS:
        return
    # The engine settings of the last program run (its monitor, with every registration)
    # would otherwise stay reachable until the next run replaces them.
    pulumi.runtime.settings.reset_options()
    gc.collect()
    if gc.get_freeze_count() > _frozen_after_full_pass + _FROZEN_GROWTH:
        gc.unfreeze()
        gc.collect()
        _frozen_after_full_pass = len(gc.get_objects())
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _no_source_positions() -> Iterator[None]:
    """Registrations skip the SDK's stack walk for their source position.

    The SDK walks the whole Python stack at every registration to tell the engine which line
    created the resource; the mock monitor records no such thing, and the walk is a sixth of
    the time of every planned component.
    """
    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resource, "_get_stack_trace", source_pb2.StackTrace)
        yield


@pytest.fixture(scope="session")
def plan_cache() -> PlanCache:
    """The session's shared, read-only whole-program plans: ``plan_cache.plan("prod", ROOT)``.

    For fixtures wider than a test; a test takes ``plan_stage``.
    """
    return PlanCache()


@pytest.fixture
def plan_stage(request: pytest.FixtureRequest, plan_cache: PlanCache) -> Callable[..., Plan]:
    """Run the real __main__.py for a stage: ``plan_stage("prod")``.

    The plan of a stage with its own stage file is run once per session and shared,
    read-only (``copy.deepcopy`` what a test changes). Pass ``config={...}`` to replace
    the stage file's settings, ``program=`` for another program's folder, and
    ``fresh=True`` for a run of the test's own: needed when the test patched, by other
    means than ``monkeypatch`` (whose changes are seen), something the program reads.
    Changed environment variables and stage files are seen without it.
    """

    def run(stage: str, config: dict[str, Any] | None = None, *, program: Path | str = ROOT,
            fresh: bool = False, **kwargs: Any) -> Plan:
        if config is None and not kwargs and not fresh and not patched_by_test(request):
            return plan_cache.plan(stage, program)
        return run_program(program, stage, config=config, **kwargs)

    return run


# Where the commands find run_program: imported once (infra plan, check), or from the
# harness at each call (infra cost).
_PLANNING_MODULES = ("infra.harness", "infra.plan", "infra.check")


@pytest.fixture
def cli_plans(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, plan_cache: PlanCache) -> PlanCache:
    """The ``infra`` commands run in this test read the session's shared plans.

    A command that plans a program for a stage with its stage file's own settings gets
    the shared plan (the same run ``plan_stage`` shares) instead of running the program
    again; anything else (other settings, mocks, a test that patched what the program
    reads) still runs. Everything else the command
    does (arguments, rendering, checks) runs as it would.
    """
    import importlib

    def cached_run(program_dir: Path | str = ROOT, stage: str = "dev", **kwargs: Any) -> Plan:
        if all(value is None for value in kwargs.values()) and not patched_by_test(request):
            return plan_cache.plan(stage, program_dir)
        return run_program(program_dir, stage, **kwargs)

    cached_run.shares_plans = True  # type: ignore[attr-defined]  # not a patch plan_stage must avoid
    for name in _PLANNING_MODULES:
        monkeypatch.setattr(importlib.import_module(name), "run_program", cached_run)
    return plan_cache


def stage_config(stage: str, **settings: Any) -> dict[str, str]:
    """Pulumi config for a stage, as the CLI would pass it: ``harbor:key`` -> string."""
    import json

    config = {}
    for key, value in settings.items():
        if isinstance(value, dict | list):
            config[f"{APP}:{key}"] = json.dumps(value)
        elif isinstance(value, bool):
            config[f"{APP}:{key}"] = "true" if value else "false"
        else:
            config[f"{APP}:{key}"] = str(value)
    return config


@pytest.fixture
def build() -> Callable[..., Plan]:
    """Build components inside a started app for a stage and return what was registered.

    Example::

        plan = build(lambda: Dynamo("Table", ...), stage="prod", nat="none")
    """
    from components import start_app

    def run(body: Callable[[], Any], stage: str = "dev", context: Any = None, **settings: Any) -> Plan:
        # context: an infra.mocks.MockContext (account, region, SSM parameters) for the mocks
        def program() -> None:
            start_app()
            body()

        return run_mocked(program, APP, stage, stage_config(stage, **settings), context=context)

    return run


def replacement_outcome(before: Any, after: Any) -> str:
    """How the engine would replace ``before`` by ``after`` (one resource planned twice).

    Pulumi creates the replacement first unless ``deleteBeforeReplace`` is set; with the same
    fixed identity (name, CIDR) that create fails. Returns ``refused`` (protected),
    ``delete-first``, ``coexist`` (the two generations have different names) or ``collides``.
    The change must force a replacement, or the test proves nothing.
    """
    from components.core.replacement import camel, identity_of

    identity = identity_of(after.type)
    assert identity is not None, f"{after.type} has no fixed identity"
    forced = [f for f in identity.forcing if before.inputs.get(camel(f)) != after.inputs.get(camel(f))]
    assert forced, f"the change to {after.name} forces no replacement"
    if after.protect:
        return "refused"
    if after.delete_before_replace:
        return "collides" if after.retain_on_delete else "delete-first"
    fixed = after.inputs.get(camel(identity.name))
    return "collides" if fixed and fixed == before.inputs.get(camel(identity.name)) else "coexist"
