"""Run the real Pulumi program offline, under AWS-like mocks, and record what it registers.

This is what ``infra plan`` and the tests use. It loads ``Pulumi.<stage>.yaml`` the way
the Pulumi CLI does, runs ``__main__.py`` in update mode (so every ``apply`` runs and
every output is known), and records each resource exactly as the engine would
receive it: type, name, parent, inputs, ``protect``, ``retainOnDelete``,
``deleteBeforeReplace`` and the URNs it waits for (``dependencies``).

Example::

    plan = run_program(Path("."), "prod")
    table = plan.one("aws:dynamodb/table:Table")
    assert table.protect and table.retain_on_delete
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from infra import lazy_sdk
from infra.mocks import AwsMocks, MockContext

SECRET = "[secret]"
UNKNOWN = "[unknown]"
ROOT = Path(__file__).resolve().parent.parent
RPC_TIMEOUT_SECONDS = 300  # a plan that waits this long on the mocks is stuck, not slow
PAUSE_COLLECTOR = True
"""Whether runs pause the cyclic garbage collector (``bench/plan_bench.py --collector on``: no)."""


@dataclass
class PlannedResource:
    """One resource as the program registered it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    provider: str | None = None
    ignore_changes: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    """URNs this resource waits for at create (and outlives at delete): explicit
    ``depends_on``, its parent, and every resource whose output feeds one of its inputs."""
    delete_before_replace: bool = False
    aliases: list[str] = field(default_factory=list)
    """Earlier logical names this resource answers to (state under them is moved, not replaced)."""

    def to_json(self) -> dict[str, Any]:
        """The resource in the plan JSON contract (DESIGN.md)."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "dependencies": self.dependencies,
        }


@dataclass
class Plan:
    """Everything one run of the program registered, plus its stack outputs."""

    project: str
    stage: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    revealed: dict[str, Any] = field(default_factory=dict, repr=False)
    """The values of the secret outputs (``infra dev`` reads the stage's links from them);
    never printed: ``outputs`` shows them as ``[secret]``."""

    def of_type(self, resource_type: str) -> list[PlannedResource]:
        """All resources of a type, in registration order."""
        return [r for r in self.resources if r.type == resource_type]

    def one(self, resource_type: str, name: str | None = None) -> PlannedResource:
        """The single resource of a type (and name, if given); fails loudly otherwise."""
        found = [r for r in self.of_type(resource_type) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(resource_type)]
            raise LookupError(f"expected one {resource_type} named {name!r}; found {names}")
        return found[0]

    def named(self, name: str) -> PlannedResource:
        """The resource with this logical name."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name!r}; found {len(found)}")
        return found[0]

    def children(self, parent: PlannedResource) -> list[PlannedResource]:
        """The direct children of a resource."""
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: PlannedResource) -> list[PlannedResource]:
        """Children, grandchildren and so on."""
        found: list[PlannedResource] = []
        for child in self.children(parent):
            found.append(child)
            found.extend(self.descendants(child))
        return found

    def waits_for(self, resource: PlannedResource, other: PlannedResource) -> bool:
        """Whether ``resource`` is created after (and deleted before) ``other``, directly
        or through a chain of dependencies, as the engine orders them."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        pending = list(resource.dependencies)
        while pending:
            urn = pending.pop()
            if urn == other.urn:
                return True
            if urn not in seen and urn in by_urn:
                seen.add(urn)
                pending.extend(by_urn[urn].dependencies)
        return False

    def to_json(self) -> dict[str, Any]:
        """The plan JSON contract (DESIGN.md)."""
        return {
            "project": self.project,
            "stage": self.stage,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
        }


def _plain(value: Any) -> Any:
    """Deserialized RPC values as JSON: secrets masked, unknowns marked, assets described."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, pulumi.Output):
        return UNKNOWN
    if isinstance(value, pulumi.Archive | pulumi.Asset):
        path = getattr(value, "path", None)
        return {"archive" if isinstance(value, pulumi.Archive) else "asset": path or type(value).__name__}
    if isinstance(value, pulumi.Resource):
        return f"[resource {type(value).__name__}]"
    return str(value)


def _release_thread_loop() -> None:
    """Close the event loop the mock monitor opened in a worker thread for one call.

    Left open, those loops are collected later in an arbitrary order with their sockets
    and fail noisily ("Invalid file descriptor: -1"); the main thread's loop is the
    program's own and stays.
    """
    if threading.current_thread() is threading.main_thread():
        return
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps every registration request, in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[PlannedResource] = []
        self._protected: dict[str, bool] = {}
        self.stack_urn: str | None = None
        self.duplicates: list[str] = []
        self._urns: set[str] = set()

    def RegisterResource(self, request: Any) -> Any:
        try:
            return self._record(request)
        finally:
            _release_thread_loop()

    def Invoke(self, request: Any) -> Any:
        try:
            return super().Invoke(request)
        finally:
            _release_thread_loop()

    def _record(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        inputs = {
            key: _plain(rpc.deserialize_property(value))
            for key, value in request.object.items()
        }
        parent = request.parent or None
        if response.urn in self._urns:
            self.duplicates.append(response.urn)
        self._urns.add(response.urn)
        protect = request.protect if request.HasField("protect") else self._protected.get(parent or "", False)
        self._protected[response.urn] = protect
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
        self.records.append(
            PlannedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=parent,
                custom=bool(request.custom),
                inputs=inputs,
                protect=protect,
                retain_on_delete=request.retainOnDelete if request.HasField("retainOnDelete") else False,
                provider=request.provider or None,
                ignore_changes=list(request.ignoreChanges),
                dependencies=_dependencies(request, parent),
                delete_before_replace=bool(request.deleteBeforeReplace),
                aliases=[a.spec.name for a in request.aliases if a.HasField("spec") and a.spec.name],
            )
        )
        return response


def _dependencies(request: Any, parent: str | None) -> list[str]:
    """The URNs a registration waits for, as the engine orders it, sorted for stable plans.

    The SDK sends explicit ``depends_on`` and the resources behind every input's outputs in
    ``dependencies`` (a component stands for its custom children), per input again in
    ``propertyDependencies``; the parent is ordered by the engine on its own.
    """
    found = set(request.dependencies)
    for deps in request.propertyDependencies.values():
        found.update(deps.urns)
    if parent:
        found.add(parent)
    return sorted(found)


def read_stage_file(program_dir: Path, stage: str) -> dict[str, Any]:
    """The config the Pulumi CLI hands the program for ``stage``, as it hands it over.

    That is the project's ``config:`` in ``Pulumi.yaml`` (settings every stage shares),
    overridden key by key by the ``config:`` block of ``Pulumi.<stage>.yaml``. Objects and
    lists are JSON encoded, scalars become strings, and ``secure:`` values (which only the
    Pulumi CLI can decrypt) are left out. A missing stage file adds nothing.
    """
    from stages.loader import check_stage_name, read_stage_document

    flat = _flatten(project_config(program_dir))
    path = program_dir / f"Pulumi.{check_stage_name(stage)}.yaml"
    if path.exists():
        flat.update(_flatten(read_stage_document(path)))
    return flat


# Keys of a declared project setting in Pulumi.yaml (``{type: string, default: ...}``).
_DECLARATION_KEYS = {"type", "description", "default", "value", "secret", "items"}


def project_config(program_dir: Path) -> dict[str, Any]:
    """The values of ``config:`` in ``Pulumi.yaml``: plain values, or a declaration's ``value``/``default``.

    A key without a namespace belongs to the project, as the Pulumi CLI reads it.
    """
    document = yaml.safe_load((program_dir / "Pulumi.yaml").read_text()) or {}
    project = str(document.get("name", ""))
    values: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and value and set(value) <= _DECLARATION_KEYS:
            if "value" in value:
                values[full] = value["value"]
            elif "default" in value:
                values[full] = value["default"]
            continue
        values[full] = value
    return values


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue
        if isinstance(value, dict | list):
            flat[key] = json.dumps(value)
        elif isinstance(value, bool):
            flat[key] = "true" if value else "false"
        else:
            flat[key] = str(value)
    return flat


def project_name(program_dir: Path) -> str:
    """The ``name:`` in the program's Pulumi.yaml."""
    document = yaml.safe_load((program_dir / "Pulumi.yaml").read_text())
    return str(document["name"])


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a program runs; the caller's setting after.

    A run allocates millions of objects (the provider SDK's classes and type hints as its
    modules load, then the resources), and each allocation burst triggers passes that
    walk everything alive again: about a third of a plan's CPU time. What a run leaves
    in cycles is small (the peak memory of a plan is the same without the passes) and is
    collected once the collector is back on.
    """
    was_enabled = gc.isenabled()
    if PAUSE_COLLECTOR:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _program_environment(program_dir: Path) -> Iterator[None]:
    """Run as the Pulumi CLI runs a program: from its folder, importable from there."""
    previous_dir = Path.cwd()
    previous_path = list(sys.path)
    os.chdir(program_dir)
    sys.path.insert(0, str(program_dir))
    try:
        yield
    finally:
        os.chdir(previous_dir)
        sys.path[:] = previous_path


def run_program(
    program_dir: Path | str = ROOT,
    stage: str = "dev",
    *,
    config: dict[str, Any] | None = None,
    context: MockContext | None = None,
    mocks: AwsMocks | None = None,
) -> Plan:
    """Run ``__main__.py`` of ``program_dir`` for ``stage`` under the mocks and return its plan.

    ``config`` replaces the stage file's settings (keys like ``harbor:nat``) when given;
    ``context`` sets the mocked account and region (default: the stage's region).
    """
    program_dir = Path(program_dir).resolve()
    settings = read_stage_file(program_dir, stage) if config is None else dict(config)

    def body() -> None:
        with _program_environment(program_dir):
            runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")

    return run_mocked(body, project_name(program_dir), stage, settings, context=context, mocks=mocks)


def run_mocked(
    body: Callable[[], Any],
    project: str,
    stage: str,
    config: dict[str, Any],
    *,
    context: MockContext | None = None,
    mocks: AwsMocks | None = None,
) -> Plan:
    """Run ``body`` as a Pulumi program of ``project`` for ``stage``, under the AWS mocks.

    Tests use this to build a few components without the whole application::

        def body():
            start_app()
            Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        plan = run_mocked(body, "harbor", "prod", {"harbor:protect": "true"})
    """
    region = config.get(f"{project}:region") or config.get("aws:region") or "us-east-1"
    mocks = mocks or AwsMocks(context or MockContext(region=region))
    monitor = RecordingMonitor(mocks)

    with _collector_paused():
        return _run_recorded(body, project, stage, config, mocks, monitor)


def _run_recorded(
    body: Callable[[], Any],
    project: str,
    stage: str,
    config: dict[str, Any],
    mocks: AwsMocks,
    monitor: RecordingMonitor,
) -> Plan:
    from components.core.context import end_of_body, reset_app

    lazy_sdk.install("pulumi_aws")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    reset_app()
    pulumi.runtime.settings.reset_options(project=project, stack=stage)
    pulumi.runtime.set_all_config(dict(config), [])
    pulumi_mocks.set_mocks(mocks, project=project, stack=stage, preview=False, monitor=monitor)
    refused: BaseException | None = None
    try:
        try:
            body()
        except Exception as error:
            refused = error
        # The engine runs pulumi.run entrypoints only after a body that ran to its end; the
        # mocks' closed root stack takes none, so the gate hears of the end from here.
        end_of_body(refused)
        # As the engine does, send what the program queued even after it raised: a refused
        # program must register nothing by itself, not because the harness stopped early.
        try:
            loop.run_until_complete(
                asyncio.wait_for(pulumi.runtime.stack.wait_for_rpcs(), RPC_TIMEOUT_SECONDS)
            )
        except Exception:
            if refused is None:
                raise
        if refused is not None:
            raise refused
        outputs, revealed = loop.run_until_complete(_resolve_outputs())
    finally:
        reset_app()
        _finish_loop(loop)
    if monitor.duplicates:
        raise pulumi.RunError(
            f"two resources share the URN {monitor.duplicates[0]}; Pulumi refuses duplicate "
            "URNs, so give one of them another name"
        )
    return Plan(project=project, stage=stage, resources=monitor.records, outputs=outputs, revealed=revealed)


def _finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Settle every task the program left on ``loop``, then close it.

    A program that stops on an error leaves registrations and applies pending; closed
    over them, the loop would report each one later ("Task was destroyed but it is
    pending!", "Future exception was never retrieved") from whatever code the garbage
    collector interrupts, burying the one message that matters. Those reports describe
    the aftermath of an error already raised, so they are dropped.
    """
    loop.set_exception_handler(lambda _loop, _context: None)
    for _ in range(10):  # cancelled tasks may start others; a few rounds settle them
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not pending:
            break
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    # End the executor threads the mock monitor ran in, so no run leaves threads behind.
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    asyncio.set_event_loop(None)


async def _resolve_outputs() -> tuple[dict[str, Any], dict[str, Any]]:
    """The stack outputs as printed (secrets masked), and the secret ones' values."""
    root = pulumi.runtime.settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    resolved: dict[str, Any] = {}
    revealed: dict[str, Any] = {}
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        if await output.is_secret():
            resolved[key] = SECRET
            if await output.is_known():
                revealed[key] = _plain(await output.future())
        elif not await output.is_known():
            resolved[key] = UNKNOWN
        else:
            resolved[key] = _plain(await output.future())
    return resolved, revealed
