"""Secret: a stage's secret value, kept in SSM Parameter Store and linked into functions.

Each secret is one SecureString per stage, plus an optional fallback every stage
without its own value uses::

    /{app}/{stage}/{Name}          e.g. /harbor/prod/StripeSecretKey
    /{app}/.fallback/{Name}        e.g. /harbor/.fallback/DvlaApiKey

``infra secret set NAME --stage S`` (or ``--fallback``) writes them. The program reads
the value at deploy time and holds it only as a Pulumi secret, so it is encrypted in
state and shown as ``[secret]`` in logs, exports and ``infra plan``.

Declare every secret at the top of ``__main__.py``, right after ``start_app()``; the
check runs before any resource is registered and names every missing secret at once::

    secrets = declare_secrets(
        ["StripeSecretKey", "StripeWebhookSecret"],
        placeholders={"StripeWebhookSecret": "whsec_placeholder"},
    )
    Function("Api", handler="app/functions/items.create", link=[table, secrets.StripeSecretKey])

A placeholder stands in when neither the stage nor the fallback has a value, but
only on a development stage: staging, prod and any protected stage must have real
values. A single ``Secret("Name")`` checks itself the same way.

Linking puts ``{"value": ...}`` into the function's encrypted link data, so
``Resource.StripeSecretKey.value`` works with SST's SDKs; it grants no IAM, because
the value travels inside the encrypted ``resource.enc`` and the function never calls SSM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pulumi
from pydantic import Field, field_validator

from components.core.base import COMPONENT_NAME, Component, ComponentArgs, ComponentError
from components.core.context import current_app, forget_at_reset
from components.core.linking import Permission
from components.core.naming import stable_hash

SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
NAME_RULE = "a letter, then letters, digits or underscores (up to 100), e.g. StripeSecretKey or STRIPE_KEY"
FALLBACK = ".fallback"
# Shared stages never run on a placeholder, whatever their protection says.
SHARED_STAGES = frozenset({"staging", "prod", "production"})


def secret_path(app: str, stage: str, name: str) -> str:
    """The stage's parameter for a secret: ``/{app}/{stage}/{name}``."""
    return f"{stage_prefix(app, stage)}/{name}"


def fallback_path(app: str, name: str) -> str:
    """The stage-independent parameter for a secret: ``/{app}/.fallback/{name}``."""
    return f"{stage_prefix(app, FALLBACK)}/{name}"


def stage_prefix(app: str, stage: str) -> str:
    """The folder holding one stage's secrets (``.fallback`` for the fallbacks)."""
    return f"/{app}/{stage}"


def check_name(name: str) -> str:
    """``name`` if it is a valid secret name, else a ValueError saying what is allowed."""
    if not SECRET_NAME.match(name or ""):
        raise ValueError(f"{name!r} is not a valid secret name: use {NAME_RULE}")
    return name


# Preview stages (pr-<number>) come and go with pull requests: their values live in the fallback.
PREVIEW_STAGE = re.compile(r"^pr-\d+$")


def set_command(name: str, stage: str) -> str:
    """The command that sets one secret for one stage (the shared fallback for preview stages)."""
    if PREVIEW_STAGE.match(stage):
        return f"infra secret set {name} --fallback"
    return f"infra secret set {name} --stage {stage}"


class SecretsMissingError(pulumi.RunError):
    """Declared secrets without a value for this stage; shown without a traceback."""

    def __init__(self, app: str, stage: str, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        width = max(len(name) for name in missing)
        noun = "secret is" if len(missing) == 1 else "secrets are"
        lines = [
            f"{len(missing)} {noun} not set for stage {stage!r} (no value at /{app}/{stage}/NAME "
            f"and no fallback at /{app}/{FALLBACK}/NAME):",
            *(f"  {name.ljust(width)}  {set_command(name, stage)}" for name in missing),
            "Each command reads the value from stdin, so it stays out of your shell history; "
            + (
                "preview stages (pr-<number>) read the fallback, so set each once for all of them."
                if PREVIEW_STAGE.match(stage)
                else "use --fallback instead of --stage for a value every stage shares."
            ),
        ]
        super().__init__("\n".join(lines))


# -- where each value comes from --------------------------------------------------------------


def _list_names(prefix: str) -> set[str]:
    """Names of the parameters directly under ``prefix``, without reading their values."""
    import pulumi_aws as aws

    with current_app().synchronous_lookup() as provider:
        found = aws.ssm.get_parameters_by_path(
            path=prefix,
            recursive=False,
            with_decryption=False,  # the check needs names only; values stay encrypted
            opts=pulumi.InvokeOptions(provider=provider),
        )
    return {name.rsplit("/", 1)[-1] for name in found.names or []}


def _placeholders_allowed(stage: Any) -> bool:
    return not stage.protect and stage.name not in SHARED_STAGES and not stage.is_production


def resolve_sources(
    names: Sequence[str], placeholders: Mapping[str, str | None] | None = None
) -> dict[str, str | None]:
    """For each secret, the SSM parameter that holds its value (None: use the placeholder).

    Raises :class:`SecretsMissingError` naming every secret with no value for the stage.
    """
    app = current_app()
    placeholders = placeholders or {}
    for name in names:
        check_name(name)
    _remember(app, names)
    stage_names = _list_names(stage_prefix(app.name, app.stage.name))
    fallback_names = _list_names(stage_prefix(app.name, FALLBACK))
    may_use_placeholder = _placeholders_allowed(app.stage)

    sources: dict[str, str | None] = {}
    missing: list[str] = []
    for name in names:
        if name in stage_names:
            sources[name] = secret_path(app.name, app.stage.name, name)
        elif name in fallback_names:
            sources[name] = fallback_path(app.name, name)
        elif may_use_placeholder and placeholders.get(name) is not None:
            sources[name] = None
        else:
            missing.append(name)
    if missing:
        raise SecretsMissingError(app.name, app.stage.name, missing)
    return sources


# The names the running program declared, so offline plans can assume they are set.
_declared: dict[str, Any] = {"app": None, "names": []}
forget_at_reset(lambda: _declared.update(app=None, names=[]))


def _remember(app: Any, names: Sequence[str]) -> None:
    if _declared["app"] is not app:  # a new program run in the same process
        _declared.update(app=app, names=[])
    _declared["names"].extend(n for n in names if n not in _declared["names"])


def declared_secret_names() -> list[str]:
    """Every secret name the running program has declared so far."""
    return list(_declared["names"])


# -- the component ------------------------------------------------------------------------------


class SecretArgs(ComponentArgs):
    """Arguments of :class:`Secret`.

    Example::

        Secret("ResendApiKey", placeholder="re_placeholder")
    """

    placeholder: str | None = Field(
        None,
        description="value used on a development stage when neither the stage nor the "
        "fallback has one; never used on staging, prod or a protected stage",
    )

    @field_validator("placeholder")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value == "":
            raise ValueError("must not be empty; leave it out to require a real value")
        return value


_UNCHECKED = object()


class Secret(Component):
    """One secret of the stage, as a Pulumi secret Output in ``value``."""

    type_token: ClassVar[str] = "harbor:sst:Secret"
    sst_type: ClassVar[str] = "sst.sst.Secret"
    Args: ClassVar[type[ComponentArgs]] = SecretArgs
    transformable: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        args: SecretArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        *,
        _source: Any = _UNCHECKED,
        **kwargs: Any,
    ) -> None:
        try:
            check_name(name)
        except ValueError as error:
            raise ComponentError(f"Secret {name!r}: {error}") from None
        self.secret_name = name
        # Pulumi names components like SST's (no underscores); keep the secret's own name for links.
        logical = name if COMPONENT_NAME.match(name) else f"{name.replace('_', '')[:56]}{stable_hash(name, 8)}"
        parsed: SecretArgs = self.parse_args(f"Secret {name!r}", args, kwargs)
        if _source is _UNCHECKED:
            _source = resolve_sources([name], {name: parsed.placeholder})[name]
        super().__init__(logical, parsed, opts)
        self.source: str | None = _source
        """The parameter the value comes from; None when the placeholder stands in."""
        if _source is None:
            value: pulumi.Output[str] = pulumi.Output.from_input(parsed.placeholder or "")
        else:
            import pulumi_aws as aws

            value = aws.ssm.get_parameter_output(
                name=_source,
                with_decryption=True,
                opts=pulumi.InvokeOutputOptions(provider=self.app.provider, parent=self),
            ).value
        self.value: pulumi.Output[str] = pulumi.Output.secret(value)
        self.register_outputs({"value": self.value})

    @property
    def link_name(self) -> str:
        return self.secret_name

    @property
    def link_type(self) -> str:
        return self.sst_type

    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"value": self.value}

    def link_permissions(self) -> Sequence[Permission]:
        # The value is inside the function's encrypted link file; no SSM access needed at run time.
        return []


class Secrets(Mapping[str, Secret]):
    """The declared secrets by name; also readable as attributes: ``secrets.StripeSecretKey``."""

    def __init__(self, secrets: Mapping[str, Secret]) -> None:
        self._secrets = dict(secrets)

    def __getitem__(self, name: str) -> Secret:
        try:
            return self._secrets[name]
        except KeyError:
            raise KeyError(f"no secret {name!r} was declared; declared: {', '.join(self._secrets)}") from None

    def __getattr__(self, name: str) -> Secret:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(error.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)


def declare_secrets(
    names: Sequence[str], placeholders: Mapping[str, str] | None = None
) -> Secrets:
    """Check every secret of the app at once, then create a :class:`Secret` for each.

    Call it right after ``start_app()``: a missing secret then stops the program
    before any resource is registered, with one message listing all of them.
    """
    placeholders = dict(placeholders or {})
    unknown = sorted(set(placeholders) - set(names))
    if unknown:
        raise ComponentError(f"declare_secrets: placeholders for undeclared secrets: {', '.join(unknown)}")
    duplicates = sorted({n for n in names if list(names).count(n) > 1})
    if duplicates:
        raise ComponentError(f"declare_secrets: declared twice: {', '.join(duplicates)}")
    try:
        sources = resolve_sources(names, placeholders)
    except ValueError as error:
        raise ComponentError(f"declare_secrets: {error}") from None
    return Secrets(
        {
            name: Secret(name, placeholder=placeholders.get(name), _source=sources[name])
            for name in names
        }
    )
