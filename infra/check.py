"""``infra check``: the guardrail rules (infra/rules.py) over a stage's plan.

    infra check --stage prod           findings grouped by rule, with reason and fix
    infra check --stage prod --json    the same, machine readable
    infra check --list                 every rule with its severity

Exits 1 when any high-severity rule fails, 0 otherwise (medium and low are reported only).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.cli import resolve_program, subcommand
from infra.harness import Plan, project_name, read_stage_file, run_program
from infra.rules import PROTECTED_TYPES, RULES, Context, Finding, evaluate, rule_by_id


def stage_context(program_dir: Path, stage: str, plan: Plan | None = None) -> Context:
    """Whether the stage protects its data, from the same validated config the program reads.

    A program whose stage files are not harbor stage settings (``bootstrap/``) is judged by
    its own resources instead: it protects data when any data store is protected.
    """
    from stages.loader import StageConfigError, load_stage

    try:
        config = load_stage(stage, project_name(program_dir), read_stage_file(program_dir, stage))
    except StageConfigError:
        resources = plan.resources if plan is not None else []
        protecting = any(r.protect for r in resources if r.custom and r.type in PROTECTED_TYPES)
        return Context(stage=stage, protecting=protecting, production=stage == "prod")
    return Context(stage=stage, protecting=config.protect, production=config.is_production)


def check_plan(plan: Plan, context: Context) -> list[Finding]:
    """Findings for the custom resources of a plan (components hold no settings of their own)."""
    return evaluate([r for r in plan.resources if r.custom or r.type.startswith("harbor:")], context)


def report(findings: Sequence[Finding], context: Context, resources: int) -> str:
    """Findings grouped by rule, each rule once with its reason and fix."""
    lines = [
        f"infra check · stage {context.stage} "
        f"({'protecting' if context.protecting else 'not protecting'} data) · "
        f"{len(RULES)} rules over {resources} resources"
    ]
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    for rule_id, group in by_rule.items():
        rule = rule_by_id(rule_id)
        lines.append("")
        lines.append(f"{rule.severity.upper():6} {rule.id}: {rule.title}")
        for finding in group:
            lines.append(f"       - {finding.type} {finding.name}: {finding.message}")
        lines.append(f"       why: {rule.reason}")
        lines.append(f"       fix: {rule.fix}")
    counts = {s: sum(f.severity == s for f in findings) for s in ("high", "medium", "low")}
    lines.append("")
    verdict = "FAILED" if counts["high"] else "passed"
    lines.append(
        f"{verdict}: {counts['high']} high, {counts['medium']} medium, {counts['low']} low"
    )
    return "\n".join(lines)


def _parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", help="stage (stack) name: dev, staging, prod, alice…")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--program", help="the program's folder (default: this project)")
    parser.add_argument("--list", action="store_true", help="list the rules and exit")


def _run(args: argparse.Namespace) -> int:
    if args.list:
        for rule in RULES:
            scope = " (protecting stages)" if rule.protecting_only else ""
            print(f"{rule.id:18} {rule.severity:6} {rule.title}{scope}")
        return 0
    if not args.stage:
        raise SystemExit("infra check: --stage is required (or --list)")
    program_dir = resolve_program(args.program)
    plan = run_program(program_dir, args.stage)
    context = stage_context(program_dir, args.stage, plan)
    findings = check_plan(plan, context)
    if args.json:
        document: dict[str, Any] = {
            "stage": context.stage,
            "protecting": context.protecting,
            "passed": not any(f.severity == "high" for f in findings),
            "findings": [f.to_json() for f in findings],
        }
        print(json.dumps(document, indent=2))
    else:
        print(report(findings, context, len(plan.resources)))
    return 1 if any(f.severity == "high" for f in findings) else 0


subcommand("check", "run the guardrail rules over a stage's plan; exit 1 on a high finding")((_parser, _run))
