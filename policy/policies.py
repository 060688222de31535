"""The CrossGuard policies, built from the guardrail rules in ``infra/rules.py``.

One stack validation policy per rule, so ``pulumi preview --policy-pack policy`` reports
exactly what ``infra check`` reports. High-severity rules are mandatory (they block the
update), the others advisory. Building a policy is cheap; only ``PolicyPack(...)`` in
``__main__.py`` starts the analyzer server, so tests import this module freely::

    policy = build_policies()[0]
    policy.validate(StackValidationArgs([...]), report_violation)

The stage comes from the resources' URNs. Whether it protects its data comes from the
policy config ``protectingStages`` when set, else from ``Pulumi.<stage>.yaml`` through the
same stage loader the program uses. CrossGuard does not report ``retainOnDelete``, so the
pack checks protection and leaves retention to ``infra check``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import _DictProxy, _is_unknown, _ListProxy

from infra.rules import PROTECTED_TYPES, RULES, Context, Resource, Rule

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = "[unknown]"
SEVERITY = {"high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW}
CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "protectingStages": {
            "type": "array",
            "items": {"type": "string"},
            "description": "stages whose data is protected; default: read Pulumi.<stage>.yaml",
        }
    }
)


def plain(value: Any) -> Any:
    """CrossGuard's unknown-checking proxies as plain values; unknowns become ``[unknown]``.

    Reading a proxy raises on the first unknown value; rules should see the rest, so the
    proxy's own target (``proxy["__target"]``) is walked instead.
    """
    if isinstance(value, _DictProxy | _ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return UNKNOWN if _is_unknown(value) else value


def to_resource(resource: PolicyResource) -> Resource:
    """A CrossGuard resource as the rules read it."""
    parent = resource.parent.urn if resource.parent is not None else getattr(resource.opts, "parent", None)
    return Resource(
        type=resource.resource_type,
        name=resource.name,
        inputs=plain(resource.props),
        urn=resource.urn,
        parent=parent,
        protect=bool(getattr(resource.opts, "protect", False)),
        retain_on_delete=None,
        delete_before_replace=bool(getattr(resource.opts, "delete_before_replace", False)),
        dependencies=[d.urn for d in getattr(resource, "dependencies", None) or []],
    )


def stage_of(resources: Sequence[Resource]) -> str | None:
    """The stack name, from ``urn:pulumi:<stack>::<project>::...``."""
    for resource in resources:
        parts = resource.urn.split("::")
        if resource.urn.startswith("urn:pulumi:") and len(parts) >= 2:
            return parts[0].removeprefix("urn:pulumi:")
    return None


def context_for(
    stage: str, config: Mapping[str, Any], resources: Sequence[Resource] = (), program_dir: Path = ROOT
) -> Context:
    """The rules' context: ``protectingStages`` from the policy config, else the stage file.

    Another project (``bootstrap/``, named in the URNs), or one without harbor stage
    settings, protects data when any of its data stores is protected, as in ``infra check``.
    """
    stages = config.get("protectingStages")
    if stages is not None:
        return Context(stage=stage, protecting=stage in stages, production=stage == "prod")
    from infra.harness import project_name, read_stage_file
    from stages.loader import StageConfigError, load_stage

    project = project_name(program_dir)
    from_urns = {r.urn.split("::")[1] for r in resources if r.urn.count("::") >= 3}
    try:
        if from_urns - {project}:
            raise StageConfigError(f"not a stack of {project}")
        settings = load_stage(stage, project, read_stage_file(program_dir, stage))
    except StageConfigError:
        protecting = any(r.protect for r in resources if r.type in PROTECTED_TYPES)
        return Context(stage=stage, protecting=protecting, production=stage == "prod")
    return Context(stage=stage, protecting=settings.protect, production=settings.is_production)


def validator(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The stack validation function of one rule."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [to_resource(r) for r in args.resources]
        stage = stage_of(resources)
        if stage is None:
            return
        context = context_for(stage, args.get_config() or {}, resources)
        for finding in rule.run(resources, context):
            report_violation(f"{finding.type} {finding.name}: {finding.message}. Fix: {rule.fix}", finding.urn)

    return validate


def build_policy(rule: Rule) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=rule.id.lower(),
        description=f"{rule.title}. {rule.reason}",
        validate=validator(rule),
        enforcement_level=EnforcementLevel.MANDATORY if rule.severity == "high" else EnforcementLevel.ADVISORY,
        severity=SEVERITY[rule.severity],
        config_schema=CONFIG_SCHEMA,
        remediation_steps=rule.fix,
    )


def build_policies(rules: Sequence[Rule] = RULES) -> list[StackValidationPolicy]:
    """One policy per guardrail rule."""
    return [build_policy(rule) for rule in rules]
