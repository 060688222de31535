"""``infra plan``: the program's resources for a stage, offline, as a tree or as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.harness import Plan, PlannedResource, run_program


def markers(resource: PlannedResource) -> str:
    """The flags a reader must notice: protected and retained resources."""
    flags = [flag for flag, on in (("protected", resource.protect),
                                   ("retained", resource.retain_on_delete)) if on]
    return f"  [{', '.join(flags)}]" if flags else ""


def render_tree(plan: Plan) -> str:
    """The plan as a tree a person can read: components with their children, then totals."""
    children: dict[str | None, list[PlannedResource]] = {}
    for resource in plan.resources:
        children.setdefault(resource.parent, []).append(resource)
    lines = [f"{plan.project} · stage {plan.stage}"]

    def walk(resource: PlannedResource, prefix: str, last: bool, root: bool = False) -> None:
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{resource.type}  {resource.name}{markers(resource)}")
        kids = sorted(children.get(resource.urn, []), key=lambda r: (r.custom, r.type, r.name))
        extension = "" if root else ("   " if last else "│  ")
        for index, kid in enumerate(kids):
            walk(kid, prefix + extension, index == len(kids) - 1)

    for root in children.get(None, []):
        walk(root, "", True, root=True)
    custom = [r for r in plan.resources if r.custom]
    components = [r for r in plan.resources if not r.custom and r.parent is not None]
    lines.append("")
    lines.append(
        f"{len(plan.resources)} resources: {len(custom)} AWS/provider resources, "
        f"{len(components)} components; {sum(r.protect for r in custom)} protected, "
        f"{sum(r.retain_on_delete for r in custom)} retained on delete"
    )
    if plan.outputs:
        lines.append("Outputs:")
        for key, value in sorted(plan.outputs.items()):
            shown = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def plan_json(plan: Plan) -> str:
    """The plan in the machine form of DESIGN.md's contract."""
    return json.dumps(plan.to_json(), indent=2, sort_keys=False, default=str)


def run_plan(program_dir: Path, stage: str, as_json: bool) -> str:
    """Run the program for ``stage`` and render its plan."""
    plan = run_program(program_dir, stage)
    return plan_json(plan) if as_json else render_tree(plan)


def summary(plan: Plan) -> dict[str, Any]:
    """Counts by resource type, for quick comparisons between stages."""
    counts: dict[str, int] = {}
    for resource in plan.resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    return dict(sorted(counts.items()))
