"""Scheduled invocations: EventBridge rules and EventBridge Scheduler schedules that target a function.

Whatever component created them (a cron job, a warmer), the plan holds a schedule
expression and a target; :class:`Scheduler` fires each Python target locally on that
schedule, with the event AWS would send: the target's ``input`` when it has one, else
EventBridge's ``Scheduled Event`` for a rule and ``{}`` for a schedule.

Expressions: ``rate(N minute|minutes|hour|hours|day|days)`` (first firing one period
after start) and ``cron(min hour day-of-month month day-of-week year)`` in UTC, with
``*``, ``?``, lists, ranges, steps, ``L`` for the last day of the month, and names
(``MON``, ``JAN``). ``at(...)`` one-time schedules are not fired locally.
"""

from __future__ import annotations

import calendar
import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.dev.functions import FunctionHost, Invocation, LogStream
from infra.dev.workers import invoke_logged
from infra.mocks import ACCOUNT_ID

MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


@dataclass
class Job:
    """One scheduled target."""

    name: str
    expression: str
    function: str  # the target's ARN
    event: dict[str, Any]
    label: str = ""  # the component that made the schedule (a Cron's name), when it has one

    def answers_to(self, name: str) -> bool:
        """Whether ``name`` means this job: its component's name or the schedule's own."""
        return name in (self.name, self.label)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> set[int] | None:
    """The values a cron field allows; None for any (``*`` or ``?``)."""
    if text in ("*", "?"):
        return None
    allowed: set[int] = set()
    for part in text.upper().split(","):
        part, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if part in ("*", ""):
            start, end = low, high
        else:
            first, _, last = part.partition("-")
            start = names.get(first) or int(first)
            end = (names.get(last) or int(last)) if last else (high if step_text else start)
        allowed.update(range(start, end + 1, step))
    return allowed


def cron_matches(expression: str, moment: datetime) -> bool:
    """Whether an AWS ``cron(...)`` expression fires at ``moment`` (a UTC minute)."""
    fields = expression.strip()[5:-1].split()
    if len(fields) != 6:
        raise ValueError(f"{expression!r}: AWS cron takes six fields (minutes hours day month weekday year)")
    minute, hour, day, month, weekday, year = fields
    checks = [
        (_field(minute, 0, 59, {}), moment.minute),
        (_field(hour, 0, 23, {}), moment.hour),
        (_field(month, 1, 12, MONTHS), moment.month),
        (_field(year, 1970, 2199, {}), moment.year),
        (_field(weekday.split("#")[0].rstrip("L") or "*", 1, 7, DAYS), moment.isoweekday() % 7 + 1),
    ]
    if day.upper() == "L":
        checks.append(({calendar.monthrange(moment.year, moment.month)[1]}, moment.day))
    else:
        checks.append((_field(day.rstrip("W"), 1, 31, {}), moment.day))
    return all(allowed is None or value in allowed for allowed, value in checks)


def rate_seconds(expression: str) -> int | None:
    """The period of a ``rate(...)`` expression in seconds; None for other expressions."""
    match = RATE.match(expression.strip())
    if not match:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[unit]


def jobs_from_plan(resources: list[Any], region: str) -> list[Job]:
    """Every schedule of the plan with a function target (rules through their targets)."""
    jobs: list[Job] = []
    rules = {r.inputs.get("name"): r.inputs for r in resources if r.type == "aws:cloudwatch/eventRule:EventRule"}
    for resource in resources:
        inputs = resource.inputs
        if resource.type == "aws:cloudwatch/eventTarget:EventTarget":
            rule = rules.get(inputs.get("rule"))
            if not rule or not rule.get("scheduleExpression") or rule.get("state") == "DISABLED":
                continue
            event = json.loads(inputs["input"]) if inputs.get("input") else {
                "version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "account": ACCOUNT_ID,
                "region": region, "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule.get('name')}"],
                "detail": {},
            }
            jobs.append(Job(str(rule.get("name")), rule["scheduleExpression"], str(inputs.get("arn")), event,
                            _component(resource)))
        elif resource.type == "aws:scheduler/schedule:Schedule":
            target = inputs.get("target") or {}
            if inputs.get("state") == "DISABLED" or not isinstance(target, dict):
                continue
            event = json.loads(target["input"]) if target.get("input") else {}
            jobs.append(Job(str(inputs.get("name") or resource.name), str(inputs.get("scheduleExpression")),
                            str(target.get("arn")), event, _component(resource)))
    return [job for job in jobs if ":function:" in job.function]


def _component(resource: Any) -> str:
    """The name of the component a resource belongs to (the last part of its parent's URN)."""
    parent = getattr(resource, "parent", None) or ""
    return "" if parent.endswith("pulumi:pulumi:Stack") or "::" not in parent else parent.rsplit("::", 1)[1]


class Scheduler:
    """Fires each job on its schedule; ``fire(name)`` runs one now (on demand)."""

    def __init__(self, jobs: list[tuple[Job, FunctionHost]], log: LogStream) -> None:
        self.jobs = jobs
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if self.jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def names(self) -> list[str]:
        """What ``fire`` accepts: each job by its component's name, else its schedule's."""
        return sorted(job.label or job.name for job, _ in self.jobs)

    def fire(self, name: str) -> Invocation | None:
        """Run the job ``name`` now, as its schedule would; None when there is no such job."""
        for job, host in self.jobs:
            if job.answers_to(name):
                event = dict(job.event)
                if event.get("detail-type") == "Scheduled Event":
                    event.update(id=str(uuid.uuid4()), time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                return invoke_logged(host, event, self.log, "schedule", job.name)
        return None

    def _run(self) -> None:
        started = datetime.now(UTC)
        due = {job.name: started + timedelta(seconds=rate_seconds(job.expression) or 0) for job, _ in self.jobs}
        last_minute = started.replace(second=0, microsecond=0)
        while not self._stop.wait(1):
            now = datetime.now(UTC)
            minute = now.replace(second=0, microsecond=0)
            new_minute = minute > last_minute
            for job, _ in self.jobs:
                period = rate_seconds(job.expression)
                if period and now >= due[job.name]:
                    due[job.name] = now + timedelta(seconds=period)
                    self.fire(job.name)
                elif new_minute and job.expression.startswith("cron(") and cron_matches(job.expression, minute):
                    self.fire(job.name)
            last_minute = minute
