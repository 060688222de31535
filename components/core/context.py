"""The running application: its stage, its AWS providers and the policy every resource follows.

``__main__.py`` calls :func:`start_app` once, before creating any component; every
component then finds the stage through :func:`current_app`.

Example::

    app = start_app()           # validates Pulumi.<stage>.yaml, stops on a bad key
    Dynamo("Table", ...)        # named harbor-<stage>-Table, tagged, removal policy applied
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.core.removal import forget_run, removal_transformation, retains
from components.core.replacement import replacement_transformation
from stages import StageConfig, load_current_stage


@dataclass
class App:
    """One stage of the application as the program sees it."""

    stage: StageConfig
    provider: aws.Provider
    gate: pulumi.Output[bool]
    _regional_providers: dict[str, aws.Provider] = field(default_factory=dict)
    shared: dict[tuple[str, object], Any] = field(default_factory=dict)
    """What components share across the program, by (kind, key): one policy per external queue,
    every Queue by its ARN output, and the like."""
    _claimed: dict[tuple[str, str], str] = field(default_factory=dict)
    components: list[Any] = field(default_factory=list)
    """Every harbor component of the program, in the order it was created."""
    _lookup_provider: aws.Provider | None = None

    @property
    def name(self) -> str:
        """The application name (the Pulumi project)."""
        return self.stage.app

    def link_data(self) -> pulumi.Output[dict[str, dict[str, Any]]]:
        """Every linkable component's link data, as a function linking it would read it.

        Components of different types may share a name, but code reads links by name: a
        name two linkable components share is left out (a function links one of them).
        """
        from collections import Counter

        from components.core.linking import Linkable, link_data

        linkable = [c for c in self.components if isinstance(c, Linkable)]
        names = Counter(c.link_name for c in linkable)
        return link_data([c for c in linkable if names[c.link_name] == 1])

    @property
    def tags(self) -> dict[str, str]:
        """Tags every AWS resource carries, through the providers' default tags."""
        return stage_tags(self.stage)

    def claim_name(self, type_token: str, name: str, owner: str) -> None:
        """Reserve ``name`` for one component of ``type_token``; a second one is refused.

        Pulumi refuses two resources with one URN, and both would get the same AWS names;
        saying so here names the component instead of printing the engine's URN.
        """
        if (type_token, name) in self._claimed:
            raise refuse(pulumi.RunError(
                f"{owner}: a second {type_token.rsplit(':', 1)[-1]} named {name!r}; every "
                "component of a type needs its own name (Pulumi refuses duplicate URNs and both "
                "would get the same AWS names), so rename one"
            ))
        self._claimed[(type_token, name)] = owner

    @contextlib.contextmanager
    def synchronous_lookup(self) -> Iterator[aws.Provider]:
        """A provider for an invoke the program body must wait for, with the gate kept shut.

        The stage's provider waits for the registration gate, which opens only at the end
        of the body, so an invoke the body waits for goes through a provider of its own.
        That provider creates nothing in the account.

        Example::

            with app.synchronous_lookup() as provider:
                zones = aws.get_availability_zones(opts=pulumi.InvokeOptions(provider=provider))
        """
        if self._lookup_provider is None:
            self._lookup_provider = aws.Provider("aws-lookups", region=self.stage.region)
        _lookups.append(self)
        try:
            yield self._lookup_provider
        finally:
            _lookups.remove(self)

    def provider_for(self, region: str) -> aws.Provider:
        """An AWS provider for another region (CloudFront certificates live in us-east-1)."""
        if region == self.stage.region:
            return self.provider
        if region not in self._regional_providers:
            self._regional_providers[region] = _aws_provider(self.stage, region, self.tags, self.gate)
        return self._regional_providers[region]


LINKS_OUTPUT = "links"
"""The stack output holding every linkable resource's link data (a secret)."""

_current: App | None = None
_refusals: list[BaseException] = []
_lookups: list[App] = []  # synchronous lookups under way


def refuse(error: BaseException) -> BaseException:
    """Note a plan-time refusal (and return it to raise): nothing of the program will register."""
    _refusals.append(error)
    return error


class _Body:
    """Whether the program body ran to its end, as far as the gate can tell."""

    completed = False
    error: BaseException | None = None


def end_of_body(error: BaseException | None = None) -> None:
    """Tell the gate the program body ended, with the error that stopped it if any.

    Under the engine harbor hears of it by itself (``pulumi.run`` and the root stack's
    closing); the offline harness, whose mocked root stack is closed before the body runs,
    calls this.
    """
    if error is None:
        _Body.completed = True
    elif not _Body.completed and _Body.error is None:
        # Every registration waiting on the gate raises what it fails with: a RunError of its
        # own (shown without a traceback) keeps the body's error and its traceback intact.
        stopped = pulumi.RunError(f"{_stopped_at(error)}{type(error).__name__}: {error}; "
                                  "nothing was registered")
        stopped.__cause__ = error
        _Body.error = stopped


def _stopped_at(error: BaseException) -> str:
    """``__main__.py:12: `` for the program's line the error passed through last."""
    import traceback

    lines = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.endswith("__main__.py")]
    return f"__main__.py:{lines[-1].lineno}: " if lines else ""


def _hear_of_the_end_of_the_body(opened: Callable[[], None]) -> None:
    """Under the engine: open the gate from a ``pulumi.run`` entrypoint, fail it when the body raised.

    ``run_in_stack`` (pulumi sdk/python/lib/pulumi/runtime/stack.py) awaits the entrypoint
    only after the program's module code returned, and closes the root stack in a
    ``finally`` either way: what is being raised there is the body's error.
    """

    async def body_completed() -> None:
        end_of_body()
        opened()

    root = pulumi.runtime.get_root_resource()
    theirs = getattr(root, "_async_program", None)
    if theirs is not None:
        # The program registered its own entrypoint before start_app: run ours first.
        async def both() -> Any:
            await body_completed()
            return await theirs()

        root._async_program = both  # type: ignore[union-attr]
    else:
        try:
            pulumi.run(body_completed)
        except pulumi.RunError:
            return  # the mocks' root stack takes no entrypoint: the harness calls end_of_body
    close = getattr(root, "_finish", None)
    if close is None:
        return

    def closing() -> None:
        if not _Body.completed:
            end_of_body(sys.exc_info()[1] or pulumi.RunError(
                "the program stopped before its end, so nothing was deployed"))
            opened()
        close()

    root._finish = closing  # type: ignore[union-attr]


def registration_gate() -> pulumi.Output[bool]:
    """An Output every AWS resource waits for through its provider, opened at the end of the body.

    Pulumi queues a registration when a resource is constructed and sends what is queued
    even when the body raised (``run_pulumi_func`` waits for outstanding RPCs before
    re-raising), so any error raised by the tenth component, or a NameError in
    ``__main__.py``, would leave nine deployed. The gate opens only once the body ran to
    its end (``pulumi.run`` entrypoints run only then); if the body raised, or a refusal
    was noted, it fails instead and every queued registration fails with it.
    """
    loop = asyncio.get_event_loop()
    opened: asyncio.Future[bool] = loop.create_future()

    def open_gate() -> None:
        if opened.done():
            return
        if _refusals:
            opened.set_exception(_refusals[0])
        elif _Body.error is not None:
            opened.set_exception(_Body.error)
        elif _Body.completed:
            opened.set_result(True)
        else:  # the loop turns inside the body (a synchronous lookup or invoke): not done yet
            loop.call_later(0.001, open_gate)

    loop.call_soon(open_gate)

    _hear_of_the_end_of_the_body(open_gate)

    async def known() -> bool:
        return True

    return pulumi.Output(set(), opened, known())


def stage_tags(stage: StageConfig) -> dict[str, str]:
    """The tags every resource of a stage carries: the stage file's ``tags``, then harbor's own.

    Example: ``harbor:tags: {Owner: platform, CostCenter: "1234"}`` adds two tags to every
    resource, components and raw ``pulumi_aws`` resources alike.
    """
    return {**stage.tags, "app": stage.app, "stage": stage.name, "managed-by": "pulumi"}


def stage_provider_transformation(provider: Callable[[], aws.Provider | None]) -> pulumi.ResourceTransformation:
    """A stack transformation giving raw ``pulumi_aws`` resources the stage's provider.

    Without it a resource created directly in ``__main__.py`` (``aws.s3.Bucket("Raw")``)
    would go through Pulumi's default provider: no default tags, and the region from
    ``aws:region`` rather than the stage's. A resource that names its own provider, or
    whose parent passes one down (every component's children), is left alone.
    """

    def apply(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("aws:") or not isinstance(args.resource, pulumi.CustomResource):
            return None
        opts = args.opts
        if opts.provider is not None or _names_aws(opts.providers):
            return None
        parent = opts.parent
        if parent is not None and "aws" in (getattr(parent, "_providers", None) or {}):
            return None
        chosen = provider()
        if chosen is None:
            return None
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=chosen))
        )

    return apply


def _names_aws(providers: object) -> bool:
    if isinstance(providers, Mapping):
        return "aws" in providers
    if isinstance(providers, list | tuple):
        return any(getattr(p, "package", None) == "aws" for p in providers)
    return False


def _aws_provider(
    stage: StageConfig, region: str, tags: dict[str, str], gate: pulumi.Output[bool]
) -> aws.Provider:
    suffix = "" if region == stage.region else f"-{region}"
    role = stage.aws_assume_role
    # Deploy-time boto3 code (components.aws.asset_sync.AwsAccess) reads the same settings.
    return aws.Provider(
        f"aws{suffix}",
        region=gate.apply(lambda _open: region),
        profile=stage.aws_profile,
        assume_roles=(
            [aws.ProviderAssumeRoleArgs(role_arn=role.role_arn, external_id=role.external_id,
                                        session_name=role.session_name)]
            if role else None
        ),
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
    )


def start_app(stage: StageConfig | None = None) -> App:
    """Validate the stage, set up its AWS provider and policies, and make it current.

    Raises ``StageConfigError`` (shown by Pulumi without a traceback) before any
    resource exists when the stage file is wrong.
    """
    global _current
    _refusals.clear()
    _lookups.clear()
    _reset_body()
    stage = stage or load_current_stage()
    pulumi.runtime.register_stack_transformation(removal_transformation(stage))
    # Every resource with a fixed name gets a way to be replaced (components/core/replacement.py).
    pulumi.runtime.register_stack_transformation(
        replacement_transformation(lambda resource_type: retains(stage, resource_type))
    )
    gate = registration_gate()
    app = App(stage=stage, provider=_aws_provider(stage, stage.region, stage_tags(stage), gate), gate=gate)
    pulumi.runtime.register_stack_transformation(stage_provider_transformation(lambda: app.provider))
    # `infra shell` against a deployed stage reads what every linkable resource tells its code
    # from here. The gate opens once the program body has created every component.
    pulumi.export(LINKS_OUTPUT, pulumi.Output.secret(gate.apply(lambda _open: app.link_data())))
    _current = app
    return _current


def current_app() -> App:
    """The application started by :func:`start_app`."""
    if _current is None:
        raise RuntimeError(
            "no application is running: call components.start_app() at the top of "
            "__main__.py before creating components"
        )
    return _current


def reset_app() -> None:
    """Forget the current application (the test harness runs many programs in one process)."""
    global _current
    _current = None
    _refusals.clear()
    _lookups.clear()
    _reset_body()
    # Kept alive, a run's whole object graph (thousands of finished tasks) would slow every
    # later run in the process: asyncio walks all tasks alive to find a loop's own.
    forget_run()
    for forget in _per_run_state:
        forget()


def _reset_body() -> None:
    _Body.completed = False
    _Body.error = None


_per_run_state: list[Callable[[], None]] = []


def forget_at_reset(forget: Callable[[], None]) -> None:
    """Have :func:`reset_app` call ``forget``: for a module that keeps state per program run.

    Example: ``forget_at_reset(_claims.clear)``.
    """
    _per_run_state.append(forget)
