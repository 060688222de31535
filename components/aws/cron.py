"""Cron: a function on a schedule, through EventBridge Scheduler.

Example (seed 003's reminders, every day at 08:00 in London, only on production)::

    Cron(
        "Reminders",
        schedule="cron(0 8 * * ? *)",
        timezone="Europe/London",
        function={"handler": "app/functions/reminders.send", "link": [table]},
        retries=3,
        enabled=["production"],
    )
    Cron("Cleanup", schedule="rate(1 hour)", function=cleanup)   # an existing Function

What it creates:

* an ``aws.scheduler.Schedule`` ``{app}-{stage}-{name}`` in the default group, with the
  expression and time zone checked at plan time (``cron(...)`` with six fields, one of
  day-of-month and day-of-week ``?``; ``rate(N unit)``, singular only for 1; or a one-time
  ``at(yyyy-mm-ddThh:mm:ss)``), a retry policy (``retries``, ``max_event_age``) and a
  flexible window when asked; ``state`` is ``DISABLED`` on stages not in ``enabled``;
* an execution role that only ``scheduler.amazonaws.com`` in this account may assume,
  allowed ``lambda:InvokeFunction`` on this function and ``sqs:SendMessage`` on this
  dead-letter queue, nothing else (Scheduler calls the target with this role, so the
  function needs no resource policy);
* a standard SQS dead-letter queue ``…-dlq`` (Scheduler refuses FIFO), encrypted, kept
  14 days, with a TLS-only queue policy, receiving the events Scheduler could not deliver
  after its retries. ``dlq=False`` goes without.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from components.aws.function import Function, resolve_function
from components.core.base import Component, ComponentArgs
from components.core.policies import deny_insecure_transport, policy_json
from stages.model import STAGE_NAME

DLQ_RETENTION = 14 * 24 * 3600  # the most SQS keeps a message

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field name, lowest, highest, names) in the order EventBridge reads them.
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, ()),
)
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_CRON_HELP = "e.g. 'cron(0 8 * * ? *)' (minutes hours day-of-month month day-of-week year)"


def _value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + 1
    if not text.isdigit() or not low <= int(text) <= high:
        allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
        raise ValueError(f"cron {field} value {text!r} is outside {allowed}")
    return int(text)


def _cron_field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for part in text.split(","):
        if part == "*":
            continue
        if field == "day-of-month" and re.fullmatch(r"L|LW|L-([1-9]|[12]\d|30)|([1-9]|[12]\d|3[01])W", part):
            continue
        if field == "day-of-week" and (m := re.fullmatch(r"([1-7]|[A-Za-z]{3})(L|#[1-5])", part)):
            _value(m.group(1), field, low, high, names)
            continue
        if field == "day-of-week" and part == "L":
            continue
        base, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) < 1):
            raise ValueError(f"cron {field} step {step!r} must be a positive number")
        if base == "*" and slash:
            continue
        start, dash, end = base.partition("-")
        if not start:
            raise ValueError(f"cron {field} {part!r} is not a value, range, list or step")
        _value(start, field, low, high, names)
        if dash:
            _value(end, field, low, high, names)


def validate_schedule(expression: str) -> str:
    """The expression if EventBridge Scheduler accepts it, else a ValueError naming the problem.

    Example::

        validate_schedule("rate(5 minutes)")      # ok
        validate_schedule("rate(1 hours)")        # ValueError: use 'rate(1 hour)'
    """
    text = expression.strip()
    if m := _RATE.match(text):
        count, unit = int(m.group(1)), m.group(2)
        if count < 1:
            raise ValueError(f"schedule {expression!r}: a rate needs a value of at least 1")
        singular = unit.rstrip("s")
        if count == 1 and unit != singular:
            raise ValueError(f"schedule {expression!r}: AWS wants the singular for 1, 'rate(1 {singular})'")
        if count > 1 and unit == singular:
            raise ValueError(f"schedule {expression!r}: AWS wants the plural above 1, 'rate({count} {unit}s)'")
        return text
    if m := _AT.match(text):
        try:
            datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise ValueError(f"schedule {expression!r}: {m.group(1)} is not a real date and time") from None
        return text
    if m := _CRON.match(text):
        fields = m.group(1).split()
        if len(fields) != 6:
            raise ValueError(
                f"schedule {expression!r} has {len(fields)} cron fields; EventBridge wants 6, {_CRON_HELP}"
            )
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ValueError(
                f"schedule {expression!r}: exactly one of day-of-month and day-of-week must be '?', {_CRON_HELP}"
            )
        for value, (field, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
            if value == "?" and field in ("day-of-month", "day-of-week"):
                continue
            try:
                _cron_field(value, field, low, high, names)
            except ValueError as error:
                raise ValueError(f"schedule {expression!r}: {error}") from None
        return text
    raise ValueError(
        f"schedule {expression!r} is not 'cron(...)', 'rate(N minutes|hours|days)' or "
        f"'at(yyyy-mm-ddThh:mm:ss)'; {_CRON_HELP}"
    )


class CronArgs(ComponentArgs):
    """Arguments of :class:`Cron`."""

    schedule: str = Field(description="'cron(0 8 * * ? *)', 'rate(5 minutes)' or 'at(2026-12-24T18:00:00)'")
    function: Any = Field(description="a Function, a handler string or a dict of Function arguments")
    timezone: str = Field("UTC", description="IANA time zone the cron fields are read in, e.g. 'Europe/London'")
    input: dict[str, Any] | None = Field(None, description="the JSON event the function receives")
    retries: int = Field(2, ge=0, le=185, description="Scheduler's retries after a failed delivery")
    max_event_age: int = Field(3600, ge=60, le=86400, description="seconds an undelivered event is retried")
    flexible_window: int | None = Field(
        None, ge=1, le=1440, description="minutes Scheduler may delay a run to spread load (None: exact)"
    )
    dlq: bool = Field(True, description="a dead-letter queue for events that could not be delivered")
    enabled: bool | list[str] = Field(
        True, description="True, False, or the stages it runs on (e.g. ['production']); disabled elsewhere"
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, expression: str) -> str:
        return validate_schedule(expression)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {zone!r} is not an IANA time zone such as 'UTC' or 'Europe/London'") from None
        return zone

    @field_validator("enabled")
    @classmethod
    def _stages(cls, enabled: bool | list[str]) -> bool | list[str]:
        if isinstance(enabled, list):
            for stage in enabled:
                if not STAGE_NAME.match(stage):
                    raise ValueError(f"enabled names {stage!r}, which is not a stage name")
        return enabled


class Cron(Component):
    """A function run on a schedule. Outputs: ``arn``, ``name``; ``function`` is the target.

    Python attributes: ``schedule``, ``role``, ``dead_letter_queue`` (None with ``dlq=False``),
    ``function``. Transformable children: ``schedule``, ``role``, ``policy``, ``dlq``, ``dlq_policy``.
    """

    type_token: ClassVar[str] = "harbor:aws:Cron"
    sst_type: ClassVar[str] = "sst.aws.Cron"
    Args: ClassVar[type[ComponentArgs]] = CronArgs
    transformable: ClassVar[tuple[str, ...]] = ("schedule", "role", "policy", "dlq", "dlq_policy")

    args: CronArgs

    def __init__(
        self,
        name: str,
        args: CronArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        self.function: Function = resolve_function(self, "Handler", a.function)
        self.enabled = a.enabled if isinstance(a.enabled, bool) else self.stage.name in a.enabled

        self.dead_letter_queue: aws.sqs.Queue | None = None
        if a.dlq:
            self.dead_letter_queue = self.child(
                "dlq",
                aws.sqs.Queue,
                {
                    "name": self.physical_name("sqs.queue", suffix="-dlq"),
                    "message_retention_seconds": DLQ_RETENTION,
                    "sqs_managed_sse_enabled": True,
                },
            )
            self.child(
                "dlq_policy",
                aws.sqs.QueuePolicy,
                {
                    "queue_url": self.dead_letter_queue.url,
                    "policy": self.dead_letter_queue.arn.apply(
                        lambda arn: policy_json(deny_insecure_transport("sqs:*", arn))
                    ),
                },
            )

        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        self.role = self.child(
            "role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role", suffix="-scheduler"),
                "assume_role_policy": account.apply(
                    lambda acct: policy_json(
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            # Only schedules in this account may use the role (confused deputy).
                            "Condition": {"StringEquals": {"aws:SourceAccount": acct}},
                        }
                    )
                ),
            },
        )
        targets: list[pulumi.Output[str]] = [self.function.arn]
        if self.dead_letter_queue is not None:
            targets.append(self.dead_letter_queue.arn)
        policy = self.child(
            "policy",
            aws.iam.RolePolicy,
            {"role": self.role.id, "policy": pulumi.Output.all(*targets).apply(_role_policy)},
        )

        target: dict[str, Any] = {
            "arn": self.function.arn,
            "role_arn": self.role.arn,
            "retry_policy": {
                "maximum_retry_attempts": a.retries,
                "maximum_event_age_in_seconds": a.max_event_age,
            },
        }
        if a.input is not None:
            target["input"] = json.dumps(a.input, sort_keys=True)
        if self.dead_letter_queue is not None:
            target["dead_letter_config"] = {"arn": self.dead_letter_queue.arn}
        window = (
            {"mode": "FLEXIBLE", "maximum_window_in_minutes": a.flexible_window}
            if a.flexible_window
            else {"mode": "OFF"}
        )
        self.schedule = self.child(
            "schedule",
            aws.scheduler.Schedule,
            {
                "name": self.physical_name("scheduler.schedule"),
                "group_name": "default",
                "schedule_expression": a.schedule,
                "schedule_expression_timezone": a.timezone,
                "state": "ENABLED" if self.enabled else "DISABLED",
                "flexible_time_window": window,
                "target": target,
            },
            # Scheduler checks the role when the schedule is saved; its grant must exist first.
            opts=pulumi.ResourceOptions(depends_on=[policy]),
        )
        self.arn: pulumi.Output[str] = self.schedule.arn
        self.name: pulumi.Output[str] = self.schedule.name
        self.register_outputs({"arn": self.arn, "name": self.name})


def _role_policy(arns: Sequence[str]) -> str:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns[0]}
    ]
    if len(arns) > 1:
        statements.append({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arns[1]})
    return policy_json(*statements)
