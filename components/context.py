"""The running application: its stage, its AWS providers and the policy every resource follows.

``__main__.py`` calls :func:`start_app` once, before creating any component; every
component then finds the stage through :func:`current_app`.

Example::

    app = start_app()           # validates Pulumi.<stage>.yaml, stops on a bad key
    Dynamo("Table", ...)        # named harbor-<stage>-Table, tagged, removal policy applied
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.removal import removal_transformation
from stages import StageConfig, load_current_stage


@dataclass
class App:
    """One stage of the application as the program sees it."""

    stage: StageConfig
    provider: aws.Provider
    _regional_providers: dict[str, aws.Provider] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The application name (the Pulumi project)."""
        return self.stage.app

    @property
    def tags(self) -> dict[str, str]:
        """Tags every AWS resource carries, through the providers' default tags."""
        return stage_tags(self.stage)

    def provider_for(self, region: str) -> aws.Provider:
        """An AWS provider for another region (CloudFront certificates live in us-east-1)."""
        if region == self.stage.region:
            return self.provider
        if region not in self._regional_providers:
            self._regional_providers[region] = _aws_provider(self.stage, region, self.tags)
        return self._regional_providers[region]


_current: App | None = None


def stage_tags(stage: StageConfig) -> dict[str, str]:
    """The tags that identify a stage's resources in the AWS console and the bill."""
    return {"app": stage.app, "stage": stage.name, "managed-by": "pulumi"}


def _aws_provider(stage: StageConfig, region: str, tags: dict[str, str]) -> aws.Provider:
    suffix = "" if region == stage.region else f"-{region}"
    return aws.Provider(
        f"aws{suffix}",
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
    )


def start_app(stage: StageConfig | None = None) -> App:
    """Validate the stage, set up its AWS provider and policies, and make it current.

    Raises ``StageConfigError`` (shown by Pulumi without a traceback) before any
    resource exists when the stage file is wrong.
    """
    global _current
    stage = stage or load_current_stage()
    pulumi.runtime.register_stack_transformation(removal_transformation(stage))
    _current = App(stage=stage, provider=_aws_provider(stage, stage.region, stage_tags(stage)))
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
