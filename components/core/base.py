"""The base every component builds on: type token, parenting, names, transforms, errors.

A component declares its arguments as a pydantic model (``Args``), the child
resources a user may transform (``transformable``) and its Pulumi type token.
``child()`` creates each underlying resource with the user's transform applied,
parented to the component, under the stage's provider and removal policy.

Example::

    table = Dynamo(
        "Table",
        fields={"pk": "string", "sk": "string"},
        primary_index={"hash_key": "pk", "range_key": "sk"},
        transform={"table": {"table_class": "STANDARD_INFREQUENT_ACCESS"}},
    )
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components.core.context import App, current_app, refuse
from components.core.naming import explicit_name_problem, physical_name

TransformFn = Callable[..., dict[str, Any] | None]
Transform = dict[str, Any] | TransformFn
"""A dict deep-merged into a child's arguments, or a callable that edits them.

The callable receives the arguments dict (and, if it takes two parameters, the
``pulumi.ResourceOptions``); it may change them in place or return a new dict.
"""

R = TypeVar("R", bound=pulumi.Resource)
M = TypeVar("M", bound=BaseModel)

COMPONENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


class ComponentError(pulumi.RunError):
    """A component was given arguments it cannot build; shown without a traceback.

    Raising one also holds back every registration of the program (see
    :func:`components.core.context.registration_gate`), so nothing is half-created.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        refuse(self)


class ComponentArgs(BaseModel):
    """Arguments every component accepts."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    transform: dict[str, Transform] = Field(
        default_factory=dict,
        description="per child resource (see the component's `transformable`): a dict merged "
        "into its arguments or a callable that edits them",
    )


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into a copy of ``base``; nested dicts merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def apply_transform(
    transform: Transform | None, args: dict[str, Any], opts: pulumi.ResourceOptions
) -> tuple[dict[str, Any], pulumi.ResourceOptions]:
    """Run a user's transform over a child's arguments and options."""
    if transform is None:
        return args, opts
    if isinstance(transform, Mapping):
        return deep_merge(args, transform), opts
    edited = copy.copy(args)
    takes_opts = len(inspect.signature(transform).parameters) >= 2
    result = transform(edited, opts) if takes_opts else transform(edited)
    return (result if result is not None else edited), opts


def validation_message(owner: str, error: ValidationError) -> str:
    """One line per problem in a component's arguments, naming the argument."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "is not an argument of this component"
        lines.append(f"{owner}: {where} {message}" if where else f"{owner}: {message}")
    return "\n".join(lines)


class Component(pulumi.ComponentResource):
    """Base class of every harbor component.

    Subclasses set ``type_token`` (``harbor:aws:Dynamo``), ``sst_type``
    (``sst.aws.Dynamo``, the type SST's SDKs see in link data), ``Args`` and
    ``transformable`` (the child names a ``transform`` may target).
    """

    type_token: ClassVar[str]
    sst_type: ClassVar[str] = ""
    Args: ClassVar[type[ComponentArgs]] = ComponentArgs
    transformable: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        args: ComponentArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"{type(self).__name__} {name!r}"
        if not COMPONENT_NAME.match(name):
            raise ComponentError(
                f"{owner}: names start with a letter and hold only letters and digits "
                "(up to 64), like SST's: use e.g. 'Table' or 'UploadsBucket'"
            )
        self.app: App = current_app()
        self.app.claim_name(self.type_token, name, owner)
        self.args = self.parse_args(owner, args, kwargs)
        unknown = sorted(set(self.args.transform) - set(self.transformable))
        if unknown:
            raise ComponentError(
                f"{owner}: transform has no child {', '.join(map(repr, unknown))}; "
                f"it can transform {', '.join(map(repr, self.transformable)) or 'nothing'}"
            )
        self.component_name = name
        # Everything that can be checked without resources is checked before this component
        # registers: a refused argument leaves nothing of it behind, under the engine too.
        self.validate()
        if opts is None or opts.parent is None:
            opts = pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(providers={"aws": self.app.provider}), opts
            )
        super().__init__(self.type_token, name, None, opts)
        self.app.components.append(self)

    def validate(self) -> None:
        """Check what the arguments alone can tell, before anything is registered.

        Subclasses override it for checks pydantic cannot make (files on disk, limits
        that depend on the stage); ``self.args``, ``self.app`` and ``self.fail`` are ready.
        """

    @classmethod
    def parse_args(
        cls, owner: str, args: ComponentArgs | Mapping[str, Any] | None, kwargs: dict[str, Any]
    ) -> Any:
        """Validate the arguments into ``Args``, turning pydantic errors into one clear message."""
        if isinstance(args, cls.Args):
            return args.model_copy(update=kwargs) if kwargs else args
        try:
            return cls.Args.model_validate({**dict(args or {}), **kwargs})
        except ValidationError as error:
            raise ComponentError(validation_message(owner, error)) from None

    @property
    def stage(self):  # -> StageConfig, kept loose to avoid an import cycle in type checkers
        """The stage this component is deployed to."""
        return self.app.stage

    # -- Linkable: components that can be linked add link_properties and link_permissions --
    @property
    def link_name(self) -> str:
        """The name a handler reads this component under: ``Resource.<link_name>``."""
        return self.component_name

    @property
    def link_type(self) -> str:
        """The SST type recorded in link data, as SST's SDKs and console expect."""
        return self.sst_type

    def fail(self, problem: str) -> ComponentError:
        """An error naming this component, for the caller to raise."""
        return ComponentError(f"{type(self).__name__} {self.component_name!r}: {problem}")

    def physical_name(self, kind: str = "generic", suffix: str = "", name: str | None = None) -> str:
        """``{app}-{stage}-{name}{suffix}`` within the naming rules of ``kind``."""
        return physical_name(
            self.app.name, self.stage.name, name or self.component_name, kind, suffix
        )

    def _check_explicit_name(self, role: str, resource_class: Callable[..., Any], args: dict[str, Any]) -> None:
        """Refuse at plan time a plain-string name AWS would refuse (one a transform set)."""
        kind = _name_kind(resource_class, args)
        name = args.get("name")
        if kind is None or not isinstance(name, str):
            return
        problem = explicit_name_problem(kind, name)
        if problem:
            raise self.fail(f"{role}: {problem}; shorten it or drop the name to get a generated one")

    def child(
        self,
        role: str,
        resource_class: Callable[..., R],
        args: dict[str, Any],
        *,
        key: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> R:
        """Create one underlying resource, after the user's transform for ``role``.

        ``key`` tells apart several children of one role (one route per route key).
        """
        options = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), opts)
        args, options = apply_transform(self.args.transform.get(role), args, options)
        self._check_explicit_name(role, resource_class, args)
        logical = f"{self.component_name}-{role}" + (f"-{key}" if key else "")
        return resource_class(logical, **args, opts=options)


# pulumi_aws classes by module and name: comparing with the classes themselves would load
# those service modules (a fifth of a second each) in programs that never use them.
_NAME_KINDS = {
    ("pulumi_aws.lambda_.function", "Function"): "lambda.function",
    ("pulumi_aws.iam.role", "Role"): "iam.role",
    ("pulumi_aws.dynamodb.table", "Table"): "dynamodb.table",
    ("pulumi_aws.cloudwatch.log_group", "LogGroup"): "logs.group",
}


def _name_kind(resource_class: Callable[..., Any], args: Mapping[str, Any]) -> str | None:
    """The naming rule of a resource whose ``name`` argument is its AWS name, if known."""
    where = (getattr(resource_class, "__module__", ""), getattr(resource_class, "__qualname__", ""))
    if where == ("pulumi_aws.sqs.queue", "Queue"):
        return "sqs.fifo-queue" if args.get("fifo_queue") else "sqs.queue"
    if where == ("pulumi_aws.sns.topic", "Topic"):
        return "sns.fifo-topic" if args.get("fifo_topic") else "sns.topic"
    return _NAME_KINDS.get(where)
