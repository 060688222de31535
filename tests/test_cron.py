"""Cron: EventBridge Scheduler schedules, checked expressions, least-privilege role, DLQ, stages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import APP, stage_config

from components import ComponentError, Cron, Function
from components.aws.cron import validate_schedule
from infra.harness import Plan, run_mocked

SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
HANDLER = "app/functions/items.create"


def run(body, stage: str = "dev", **settings: Any) -> Plan:
    def program() -> None:
        from components import start_app

        start_app()
        body()

    return run_mocked(program, APP, stage, stage_config(stage, **settings))


def cron(**args: Any):
    return lambda: Cron("Reminders", **{"schedule": "cron(0 8 * * ? *)", "function": HANDLER, **args})


def test_schedule_targets_the_function_with_expression_time_zone_and_retries():
    plan = run(cron(timezone="Europe/London", retries=3, max_event_age=600, input={"kind": "daily"}))
    schedule = plan.one(SCHEDULE).inputs
    assert schedule["name"] == "harbor-dev-Reminders"
    assert schedule["groupName"] == "default"
    assert schedule["scheduleExpression"] == "cron(0 8 * * ? *)"
    assert schedule["scheduleExpressionTimezone"] == "Europe/London"
    assert schedule["state"] == "ENABLED"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule["target"]
    assert target["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-RemindersHandler"
    assert target["retryPolicy"] == {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 600}
    assert json.loads(target["input"]) == {"kind": "daily"}


def test_role_may_only_invoke_this_function_and_send_to_this_dlq():
    plan = run(cron())
    role = plan.one(ROLE, "Reminders-role").inputs
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    statements = json.loads(plan.one(ROLE_POLICY, "Reminders-policy").inputs["policy"])["Statement"]
    assert statements == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-RemindersHandler"},
        {"Effect": "Allow", "Action": "sqs:SendMessage",
         "Resource": "arn:aws:sqs:us-east-1:123456789012:harbor-dev-Reminders-dlq"},
    ]
    schedule = plan.one(SCHEDULE)
    assert plan.one(ROLE_POLICY, "Reminders-policy").urn in schedule.dependencies
    assert schedule.inputs["target"]["roleArn"] == "arn:aws:iam::123456789012:role/harbor-dev-Reminders-scheduler"


def test_dead_letter_queue_is_standard_encrypted_tls_only_and_wired_to_the_target():
    plan = run(cron())
    dlq = plan.one(QUEUE, "Reminders-dlq").inputs
    assert dlq["name"] == "harbor-dev-Reminders-dlq" and "fifoQueue" not in dlq
    assert dlq["sqsManagedSseEnabled"] is True and dlq["messageRetentionSeconds"] == 1209600
    (statement,) = json.loads(plan.one(QUEUE_POLICY, "Reminders-dlq_policy").inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    target = plan.one(SCHEDULE).inputs["target"]
    assert target["deadLetterConfig"] == {"arn": "arn:aws:sqs:us-east-1:123456789012:harbor-dev-Reminders-dlq"}


def test_without_dlq_the_role_only_invokes():
    plan = run(cron(dlq=False))
    assert not plan.of_type(QUEUE)
    statements = json.loads(plan.one(ROLE_POLICY, "Reminders-policy").inputs["policy"])["Statement"]
    assert [s["Action"] for s in statements] == ["lambda:InvokeFunction"]
    assert "deadLetterConfig" not in plan.one(SCHEDULE).inputs["target"]


@pytest.mark.parametrize(
    ("stage", "state"), [("production", "ENABLED"), ("staging", "DISABLED"), ("alice", "DISABLED")]
)
def test_enabled_lists_the_stages_it_runs_on(stage, state):
    plan = run(cron(enabled=["production"]), stage=stage)
    assert plan.one(SCHEDULE).inputs["state"] == state


def test_enabled_false_keeps_the_schedule_disabled():
    assert run(cron(enabled=False)).one(SCHEDULE).inputs["state"] == "DISABLED"


def test_flexible_window_spreads_runs():
    window = run(cron(flexible_window=15)).one(SCHEDULE).inputs["flexibleTimeWindow"]
    assert window == {"mode": "FLEXIBLE", "maximumWindowInMinutes": 15}


def test_an_existing_function_is_used_as_is():
    def body():
        worker = Function("Worker", handler=HANDLER)
        Cron("Hourly", schedule="rate(1 hour)", function=worker)

    plan = run(body)
    assert len(plan.of_type("aws:lambda/function:Function")) == 1
    assert plan.one(SCHEDULE).inputs["target"]["arn"].endswith(":function:harbor-dev-Worker")


@pytest.mark.parametrize(
    "expression",
    ["rate(1 minute)", "rate(5 minutes)", "rate(2 days)", "cron(0/15 * * * ? *)", "cron(0 8 ? * MON-FRI *)",
     "cron(0 18 L * ? *)", "cron(0 9 ? * 2#1 *)", "cron(30 23 15W JAN,JUL ? 2027)", "at(2026-12-24T18:00:00)"],
)
def test_expressions_eventbridge_accepts_pass(expression):
    assert validate_schedule(expression) == expression


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("rate(1 hours)", r"singular for 1, 'rate\(1 hour\)'"),
        ("rate(5 minute)", r"plural above 1, 'rate\(5 minutes\)'"),
        ("rate(0 minutes)", r"at least 1"),
        ("cron(0 8 * * *)", r"has 5 cron fields; EventBridge wants 6"),
        ("cron(0 8 * * * *)", r"exactly one of day-of-month and day-of-week must be '\?'"),
        ("cron(0 8 ? * ? *)", r"exactly one of day-of-month and day-of-week"),
        ("cron(60 8 * * ? *)", r"minutes value '60' is outside 0-59"),
        ("cron(0 24 * * ? *)", r"hours value '24' is outside 0-23"),
        ("cron(0 8 * 13 ? *)", r"month value '13' is outside 1-12 or JAN-DEC"),
        ("cron(0 8 ? * FUNDAY *)", r"day-of-week"),
        ("cron(0/0 8 * * ? *)", r"step '0' must be a positive number"),
        ("at(2026-02-30T10:00:00)", r"not a real date"),
        ("every 5 minutes", r"is not 'cron\(...\)', 'rate\(N minutes|hours|days\)'"),
    ],
)
def test_bad_expressions_stop_the_plan_naming_the_problem(expression, problem):
    with pytest.raises(ComponentError, match=problem):
        run(cron(schedule=expression))


def test_unknown_time_zone_is_refused():
    with pytest.raises(ComponentError, match=r"timezone 'Mars/Olympus' is not an IANA time zone"):
        run(cron(timezone="Mars/Olympus"))


@pytest.mark.parametrize(("setting", "value", "problem"), [
    ("retries", 186, r"retries Input should be less than or equal to 185"),
    ("max_event_age", 30, r"max_event_age Input should be greater than or equal to 60"),
    ("flexible_window", 0, r"flexible_window Input should be greater than or equal to 1"),
    ("enabled", ["Production"], r"enabled names 'Production', which is not a stage name"),
])
def test_out_of_range_settings_are_refused(setting, value, problem):
    with pytest.raises(ComponentError, match=problem):
        run(cron(**{setting: value}))


def test_a_target_that_is_not_a_function_is_refused():
    with pytest.raises(ComponentError, match=r"needs a Function, a handler string"):
        run(cron(function=42))


def test_transform_reaches_the_schedule():
    plan = run(cron(transform={"schedule": {"description": "daily reminders"}}))
    assert plan.one(SCHEDULE).inputs["description"] == "daily reminders"


def test_infra_dev_runs_enabled_crons_and_skips_disabled_ones():
    from infra.dev.schedules import jobs_from_plan

    def body():
        Cron("Reminders", schedule="rate(5 minutes)", function=HANDLER, input={"kind": "daily"})
        Cron("Quarterly", schedule="cron(0 0 1 JAN,APR,JUL,OCT ? *)", function=HANDLER, enabled=["production"])

    (job,) = jobs_from_plan(run(body).resources, "us-east-1")
    assert (job.name, job.expression, job.event) == ("harbor-dev-Reminders", "rate(5 minutes)", {"kind": "daily"})
    assert job.function.endswith(":function:harbor-dev-RemindersHandler")
