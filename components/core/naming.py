"""Physical names: ``{app}-{stage}-{name}``, within each AWS service's length and character rules.

When a name is too long it is cut and a stable 8-character hash of the full name is
appended, so two long names never collide and the same inputs always give the same name.

Example::

    physical_name("harbor", "prod", "Table", "dynamodb.table")   # "harbor-prod-Table"
    physical_name("harbor", "prod", "Assets", "s3.bucket")        # "harbor-prod-assets"
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """What one AWS service accepts as a resource name."""

    max_length: int
    invalid: re.Pattern[str]
    lowercase: bool = False
    must_start_with_letter: bool = False
    reserved_suffix: str = ""
    """A suffix AWS requires that counts toward the length (``.fifo`` for FIFO queues)."""


def _rule(max_length: int, allowed: str, **kwargs: bool | str) -> NameRule:
    return NameRule(max_length, re.compile(f"[^{allowed}]+"), **kwargs)  # type: ignore[arg-type]


NAME_RULES: dict[str, NameRule] = {
    "dynamodb.table": _rule(255, r"a-zA-Z0-9_.\-"),
    "s3.bucket": _rule(63, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "lambda.function": _rule(64, r"a-zA-Z0-9_\-"),
    "iam.role": _rule(64, r"a-zA-Z0-9_+=,.@\-"),
    "iam.policy": _rule(128, r"a-zA-Z0-9_+=,.@\-"),
    "sqs.queue": _rule(80, r"a-zA-Z0-9_\-"),
    "sqs.fifo-queue": _rule(80, r"a-zA-Z0-9_\-", reserved_suffix=".fifo"),
    "sns.topic": _rule(256, r"a-zA-Z0-9_\-"),
    "sns.fifo-topic": _rule(256, r"a-zA-Z0-9_\-", reserved_suffix=".fifo"),
    "rds.cluster": _rule(63, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "rds.parameter-group": _rule(255, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "rds.proxy": _rule(60, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "rds.instance": _rule(63, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "rds.subnet-group": _rule(255, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "rds.snapshot": _rule(255, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "logs.group": _rule(512, r"a-zA-Z0-9_\-/.#"),
    "ec2.security-group": _rule(255, r"a-zA-Z0-9 ._\-:/()#,@+=&;{}!$*"),
    "ec2.tag": _rule(256, r"a-zA-Z0-9 ._\-:/+=@"),
    "apigateway.api": _rule(128, r"a-zA-Z0-9_\-"),
    "secretsmanager.secret": _rule(512, r"a-zA-Z0-9/_+=.@\-"),
    "ssm.parameter": _rule(1011, r"a-zA-Z0-9_.\-/"),
    "cloudfront.policy": _rule(128, r"a-zA-Z0-9_\-"),
    "kms.alias": _rule(256, r"a-zA-Z0-9/_\-"),
    "events.rule": _rule(64, r"a-zA-Z0-9_.\-"),
    "scheduler.schedule": _rule(64, r"a-zA-Z0-9_.\-"),
    "ecr.repository": _rule(256, r"a-z0-9\-", lowercase=True, must_start_with_letter=True),
    "cloudwatch.alarm": _rule(255, r"a-zA-Z0-9_.\-"),
    "generic": _rule(64, r"a-zA-Z0-9_\-"),
}

HASH_LENGTH = 8


def stable_hash(text: str, length: int = HASH_LENGTH) -> str:
    """A short hash that is the same on every machine and every run."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def physical_name(app: str, stage: str, name: str, kind: str = "generic", suffix: str = "") -> str:
    """The AWS name of a resource: ``{app}-{stage}-{name}{suffix}`` fitted to ``kind``'s rules.

    ``suffix`` is kept whole after truncation (``-dlq``, a hash); the rule's reserved
    suffix (``.fifo``) is appended last and counted toward the limit.
    """
    if kind not in NAME_RULES:
        raise ValueError(f"unknown name kind {kind!r}; use one of {', '.join(sorted(NAME_RULES))}")
    rule = NAME_RULES[kind]
    full = f"{app}-{stage}-{name}{suffix}"
    base = f"{app}-{stage}-{name}"
    if rule.lowercase:
        base, suffix = base.lower(), suffix.lower()
    # Every service allows hyphens, so a run of forbidden characters becomes one hyphen.
    base = rule.invalid.sub("-", base)
    suffix = rule.invalid.sub("-", suffix)
    if rule.lowercase:
        base = re.sub(r"-{2,}", "-", base)
    if rule.must_start_with_letter and not base[:1].isalpha():
        base = f"n{base}"
    budget = rule.max_length - len(rule.reserved_suffix) - len(suffix)
    if len(base) > budget:
        tag = stable_hash(full)
        base = base[: budget - len(tag) - 1].rstrip("-_.") + "-" + tag
    joined = (base + suffix).rstrip("-")
    if rule.lowercase:
        # A base ending in a hyphen meets a suffix starting with one ("-dlq"); RDS refuses "--".
        joined = re.sub(r"-{2,}", "-", joined)
    return joined + rule.reserved_suffix


def explicit_name_problem(kind: str, name: str) -> str | None:
    """What AWS would refuse about a name given outright (by a transform), or None.

    Generated names always fit; a name a user sets replaces them and is checked here,
    at plan time, against the same rules.
    """
    rule = NAME_RULES[kind]
    if rule.reserved_suffix and not name.endswith(rule.reserved_suffix):
        return f"name {name!r} must end with {rule.reserved_suffix!r}"
    if len(name) > rule.max_length:
        counted = f" including {rule.reserved_suffix!r}" if rule.reserved_suffix else ""
        return f"name {name!r} is {len(name)} characters; AWS allows {rule.max_length}{counted}"
    body = name.removesuffix(rule.reserved_suffix) if rule.reserved_suffix else name
    bad = sorted(set(rule.invalid.findall(body)))
    if not body or bad:
        return f"name {name!r} holds characters AWS refuses here: {''.join(bad) or 'none given'}"
    return None
