"""Whole-program plans shared by every test of a session, handed out read-only.

Running ``__main__.py`` for a stage under the mocks takes most of a second, and hundreds
of tests only read the same plan. :class:`PlanCache` runs each program and stage once per
set of inputs and keeps the result, frozen: a test that tries to change a shared plan
(``plan.resources.append``, ``inputs["x"] = ...``, ``resource.protect = True``) fails
at that line instead of corrupting the next test's plan. ``copy.deepcopy`` of any part
gives an ordinary, mutable copy for a test that needs one.

What a plan depends on besides the program's code is part of the key: the program folder,
the stage, the environment and the bytes of ``Pulumi.yaml``, ``Pulumi.<stage>.yaml`` and
``__main__.py``. A test that edits a stage file or sets a variable therefore plans again;
a test that patches Python objects the program reads must ask for a fresh run
(``plan_stage(stage, fresh=True)``, done for it when it used ``monkeypatch``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

from infra.harness import Plan, PlannedResource, run_program


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(
        "this plan is shared by every test of the session and is read-only: "
        "take copy.deepcopy() of what the test changes, or plan with fresh=True"
    )


class FrozenDict(dict):
    """A dict that refuses every change; equal to, and JSON-encoded as, a plain dict."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class FrozenList(list):
    """A list that refuses every change; equal to, and JSON-encoded as, a plain list."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> list:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """``value`` with every dict and list inside it read-only."""
    if isinstance(value, dict):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(item) for item in value)
    return value


class _Sealed:
    """Attributes fixed once sealed; ``dataclasses.replace`` still builds a new, open copy."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_sealed"):
            _refuse()
        object.__setattr__(self, name, value)

    __delattr__ = _refuse

    def __eq__(self, other: object) -> bool:
        # Equal to an ordinary plan or resource with the same fields (the dataclass
        # comparison alone would also ask for the same class).
        if not dataclasses.is_dataclass(other) or isinstance(other, type):
            return NotImplemented
        mine = [getattr(self, f.name) for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        theirs = [getattr(other, f.name, None) for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict) -> Any:
        base = type(self).__mro__[2]  # PlannedResource or Plan
        return base(**{f.name: copy.deepcopy(getattr(self, f.name), memo)
                       for f in dataclasses.fields(self)})  # type: ignore[arg-type]


class FrozenResource(_Sealed, PlannedResource):
    """A read-only :class:`PlannedResource`."""


class FrozenPlan(_Sealed, Plan):
    """A read-only :class:`Plan`."""


def _sealed(cls: type, fields: dict[str, Any]) -> Any:
    instance = cls(**fields)
    object.__setattr__(instance, "_sealed", True)
    return instance


def frozen_plan(plan: Plan) -> FrozenPlan:
    """A read-only copy of ``plan``: its resources, their inputs and lists, its outputs."""
    resources = FrozenList(
        _sealed(FrozenResource, {f.name: freeze(getattr(r, f.name)) for f in dataclasses.fields(r)})
        for r in plan.resources
    )
    return _sealed(FrozenPlan, {"project": plan.project, "stage": plan.stage,
                                "resources": resources, "outputs": freeze(plan.outputs)})


def inputs_fingerprint(program: Path, stage: str) -> str:
    """What a plan of ``program`` for ``stage`` reads besides code: environment and stage files."""
    digest = hashlib.sha256()
    for key, value in sorted(os.environ.items()):
        if not key.startswith("PYTEST_"):  # PYTEST_CURRENT_TEST changes with every test
            digest.update(f"{key}={value}\0".encode())
    for name in ("Pulumi.yaml", f"Pulumi.{stage}.yaml", "__main__.py"):
        path = program / name
        digest.update(f"{name}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing\0")
    return digest.hexdigest()


class PlanCache:
    """Each program's plan per stage, run once per set of inputs and shared read-only."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str, str], FrozenPlan] = {}
        self.runs = 0  # whole-program runs made by the cache

    def plan(self, stage: str, program: Path | str) -> FrozenPlan:
        """The plan of ``program`` for ``stage`` with the stage file's own settings."""
        folder = Path(program).resolve()
        key = (str(folder), stage, inputs_fingerprint(folder, stage))
        if key not in self._plans:
            self.runs += 1
            self._plans[key] = frozen_plan(run_program(folder, stage))
        return self._plans[key]


def patched_by_test(request: pytest.FixtureRequest) -> bool:
    """Whether the test changed, through ``monkeypatch``, something a plan might read.

    Attributes, mappings other than the environment (the environment is in the key),
    the working folder and ``sys.path`` count; the cache's own replacements (marked
    ``shares_plans``, see ``cli_plans``) do not.
    """
    patch = request.node.funcargs.get("monkeypatch") if hasattr(request.node, "funcargs") else None
    if patch is None:
        return False
    try:
        attributes = [(owner, name) for owner, name, _old in patch._setattr
                      if not getattr(getattr(owner, name, None), "shares_plans", False)]
        mappings = [entry for entry in patch._setitem if entry[0] is not os.environ]
        return bool(attributes or mappings or patch._cwd is not None or patch._savesyspath is not None)
    except AttributeError:  # another pytest's MonkeyPatch: assume the worst
        return True
