"""Shared fixtures: run the whole program, or a few components, under the AWS mocks."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

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


@pytest.fixture
def plan_stage() -> Callable[..., Plan]:
    """Run the real __main__.py for a stage: ``plan_stage("prod")``.

    Pass ``config={...}`` to replace the stage file's settings.
    """

    def run(stage: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Plan:
        return run_program(ROOT, stage, config=config, **kwargs)

    return run


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
