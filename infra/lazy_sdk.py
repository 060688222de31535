"""Load a provider SDK's service packages one class at a time, for offline plans.

``pulumi_aws`` loads a service (``aws.ec2``) on first use, but then runs its
``__init__``, which imports every module of the service: all of EC2's 180 resources and
data sources, each class built with its type hints, when a program uses five of them.
Under the harness, a service package instead resolves a name the first time it is read,
importing only the module that defines it (and what that module imports). The classes
are the SDK's own, so what the program registers is unchanged; only the modules nobody
uses are never loaded.

The service ``__init__`` files are generated and do nothing but re-export their
modules (``from .vpc import *`` ... ``from . import outputs``), in that order, so a later
module's name wins, as it would there. Anything the index cannot answer (``dir()``, a
star import, a name no module exports) loads the whole package the SDK's way.

Example::

    install("pulumi_aws")
    import pulumi_aws as aws
    aws.ec2.Vpc   # imports pulumi_aws.ec2.vpc, not the other 180 modules of EC2
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import sys
import types
import typing
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

# ``from .vpc import *`` and ``from . import outputs`` lines of a generated __init__.py.
_STAR_IMPORT = re.compile(r"^from \.(\w+) import \*$", re.MULTILINE)
_MODULE_IMPORT = re.compile(r"^from \. import (\w+)$", re.MULTILINE)
_ALL = re.compile(r"^__all__ = (\[.*?\])", re.MULTILINE | re.DOTALL)
_MARK = "__harbor_lazy_service__"


def install(sdk: str) -> None:
    """Make the not yet loaded service packages of ``sdk`` resolve names one module at a time.

    Idempotent; services already loaded (or an SDK without lazy services) are left as they are.
    """
    package = importlib.import_module(sdk)
    for name, module in list(sys.modules.items()):
        if not name.startswith(f"{sdk}.") or name.count(".") != 1:
            continue
        spec = module.__spec__
        if type(module).__name__ != "_LazyModule" or spec is None or not spec.submodule_search_locations:
            continue
        if isinstance(spec.loader, _ServiceLoader):
            continue
        spec.loader = _ServiceLoader(spec.loader, spec)
    del package


class _ServiceLoader:
    """Runs instead of the service's ``__init__``: installs the name resolver."""

    def __init__(self, original: Any, spec: ModuleSpec) -> None:
        self.original = original
        self.spec = spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        origin = Path(str(self.spec.origin))
        try:
            exports, modules = _index(origin)
        except (OSError, SyntaxError, ValueError):
            self.original.exec_module(module)  # not the generated shape: the SDK's way
            return
        module.__dict__[_MARK] = True
        # What the generated __init__ imports besides its modules.
        module.__dict__.update(_builtins=builtins, typing=typing,
                               _utilities=importlib.import_module(f"{str(self.spec.parent).rpartition('.')[0]}._utilities"))
        module.__getattr__ = _resolver(module, exports, modules, self.original)  # type: ignore[method-assign]
        module.__dir__ = lambda: sorted(set(module.__dict__) | set(exports) | set(modules))  # type: ignore[method-assign]


def _index(init: Path) -> tuple[dict[str, str], set[str]]:
    """Exported name -> defining module, and every submodule the package exposes."""
    text = init.read_text()
    body = "\n".join(line for line in text.splitlines() if line and not line.startswith("#"))
    allowed = re.compile(r"^(import builtins as _builtins|from \.\. import _utilities|import typing"
                         r"|from \.\w+ import \*|from \. import \w+)$")
    if any(not allowed.match(line) for line in body.splitlines()):
        raise ValueError(f"{init} does more than re-export its modules")
    exports: dict[str, str] = {}
    submodules = _STAR_IMPORT.findall(text)
    for submodule in submodules:
        for name in _exported(init.parent / f"{submodule}.py"):
            exports[name] = submodule
    return exports, set(submodules) | set(_MODULE_IMPORT.findall(text))


def _exported(path: Path) -> list[str]:
    """The ``__all__`` of a generated module, read without importing it."""
    with path.open(encoding="utf-8") as source:
        head = source.read(8192)
        while "__all__" in head and "]" not in head[head.index("__all__"):]:
            more = source.read(65536)
            if not more:
                break
            head += more
        if "__all__" not in head:
            head += source.read()
    found = _ALL.search(head)
    if not found:
        raise ValueError(f"{path} has no __all__")
    return list(ast.literal_eval(found.group(1)))


def _resolver(module: types.ModuleType, exports: dict[str, str], modules: set[str], original: Any) -> Any:
    prefix = f"{module.__name__}."
    names_of: dict[str, list[str]] = {}
    for exported, submodule in exports.items():
        names_of.setdefault(submodule, []).append(exported)
    bound: set[str] = set()

    def bind_loaded() -> None:
        # As the star imports would: every loaded submodule's names on the package, so a
        # function shadows the module of the same name (``get_ami``) however it was loaded.
        for submodule in names_of.keys() - bound:
            loaded = sys.modules.get(prefix + submodule)
            # Not one still running its body (it imported a sibling that lands here).
            if loaded is not None and not getattr(loaded.__spec__, "_initializing", False):
                bound.add(submodule)
                for name in names_of[submodule]:
                    module.__dict__[name] = getattr(loaded, name)

    def resolve(name: str) -> Any:
        if name.startswith("__") and name != "__all__":
            # The generated package defines no dunders of its own; asking is not using.
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        if name in exports:
            importlib.import_module(prefix + exports[name])
            bind_loaded()
            return module.__dict__[name]
        if name in modules:
            value = importlib.import_module(prefix + name)
            bind_loaded()
            return module.__dict__.get(name, value)
        # A star import asks for __all__, introspection for anything else: load it all.
        module.__dict__.pop("__getattr__", None)
        module.__dict__.pop("__dir__", None)
        original.exec_module(module)
        if name in module.__dict__:
            return module.__dict__[name]
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    return resolve
