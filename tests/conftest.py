"""Shared fixtures: run the whole program, or a few components, under the AWS mocks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.harness import Plan, run_mocked, run_program

ROOT = Path(__file__).resolve().parent.parent
APP = "harbor"


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
    from components.replacement import camel, identity_of

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
