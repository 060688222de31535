"""Alarms: function errors/throttles, queue age, DLQ depth, the topic they notify, per stage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import APP, stage_config

from components import Alarms, ComponentError, Cron, Function, Queue, SnsTopic
from infra.harness import Plan, run_mocked
from stages.loader import StageConfigError, load_stage

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
KEY = "aws:kms/key:Key"
HANDLER = "app/functions/items.create"
OWN_TOPIC = "arn:aws:sns:us-east-1:123456789012:harbor-staging-Alarms"


def run(body, stage: str = "staging", **settings: Any) -> Plan:
    def program() -> None:
        from components import start_app

        start_app()
        body()

    return run_mocked(program, APP, stage, stage_config(stage, **settings))


def everything(**extra: Any):
    def body() -> None:
        api = Function("Api", handler=HANDLER)
        jobs = Queue("Jobs")
        reminders = Cron("Reminders", schedule="rate(1 hour)", function=HANDLER)
        Alarms("Alarms", functions=[api], queues=[jobs], crons=[reminders], **extra)

    return body


def alarms(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in plan.of_type(ALARM)}


def test_each_target_gets_its_alarms_by_name():
    assert set(alarms(run(everything()))) == {
        "harbor-staging-Api-errors",
        "harbor-staging-Api-throttles",
        "harbor-staging-Jobs-age",
        "harbor-staging-Jobs-dlq",
        "harbor-staging-Reminders-dlq",
    }


def test_function_alarms_watch_errors_and_throttles_of_that_function():
    found = alarms(run(everything(errors=5, period=60, evaluation_periods=3)))
    errors = found["harbor-staging-Api-errors"]
    assert (errors["namespace"], errors["metricName"], errors["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["dimensions"] == {"FunctionName": "harbor-staging-Api"}
    assert errors["threshold"] == 5 and errors["period"] == 60 and errors["evaluationPeriods"] == 3
    assert errors["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert errors["treatMissingData"] == "notBreaching"
    throttles = found["harbor-staging-Api-throttles"]
    assert throttles["metricName"] == "Throttles" and throttles["threshold"] == 1


def test_queue_alarms_watch_the_oldest_message_and_the_dlq_depth():
    found = alarms(run(everything(queue_age=600)))
    age = found["harbor-staging-Jobs-age"]
    assert (age["namespace"], age["metricName"], age["statistic"]) == (
        "AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum")
    assert age["dimensions"] == {"QueueName": "harbor-staging-Jobs"} and age["threshold"] == 600
    for name, queue in (("Jobs-dlq", "harbor-staging-Jobs-dlq"), ("Reminders-dlq", "harbor-staging-Reminders-dlq")):
        depth = found[f"harbor-staging-{name}"]
        assert depth["metricName"] == "ApproximateNumberOfMessagesVisible"
        assert depth["dimensions"] == {"QueueName": queue} and depth["threshold"] == 1


def test_alarms_notify_their_own_topic_under_a_key_cloudwatch_may_use():
    plan = run(everything())
    for inputs in alarms(plan).values():
        assert inputs["alarmActions"] == [OWN_TOPIC] and inputs["okActions"] == [OWN_TOPIC]
    topic = plan.one(TOPIC, "Alarms-topic").inputs
    key = plan.one(KEY, "Alarms-topic_key")
    assert topic["kmsMasterKeyId"].startswith("arn:aws:kms:") and topic["kmsMasterKeyId"] != "alias/aws/sns"
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    assert statements["CloudWatchAlarmsEncrypt"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["CloudWatchAlarmsEncrypt"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert key.inputs["enableKeyRotation"] is True
    (publish,) = json.loads(plan.one("aws:sns/topicPolicy:TopicPolicy", "Alarms-topic_policy").inputs["policy"])[
        "Statement"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert publish["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"}


def test_the_stages_topic_is_notified_and_emails_subscribe():
    existing = "arn:aws:sns:us-east-1:123456789012:oncall"
    plan = run(everything(), alarms={"topicArn": existing, "emails": ["oncall@getreggie.io"]})
    assert not plan.of_type(TOPIC) and not plan.of_type(KEY)
    assert {tuple(a["alarmActions"]) for a in alarms(plan).values()} == {(existing,)}
    (subscription,) = plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs == {"topic": existing, "protocol": "email", "endpoint": "oncall@getreggie.io"}


def test_an_sns_topic_with_its_own_key_can_be_given():
    def body():
        topic = SnsTopic("Alerts", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/abc")
        Alarms("Alarms", functions=[Function("Api", handler=HANDLER)], topic=topic)

    plan = run(body)
    assert {tuple(a["alarmActions"]) for a in alarms(plan).values()} == {
        ("arn:aws:sns:us-east-1:123456789012:harbor-staging-Alerts",)}


@pytest.mark.parametrize("stage", ["dev", "alice"])
def test_dev_and_personal_stages_have_no_alarms(stage):
    plan = run(everything(), stage=stage)
    assert not plan.of_type(ALARM) and not plan.of_type(TOPIC)


def test_a_stage_can_turn_alarms_on_or_off():
    assert len(run(everything(), stage="dev", alarms={"enabled": True}).of_type(ALARM)) == 5
    assert not run(everything(), stage="prod", alarms={"enabled": False}).of_type(ALARM)


def test_prod_keeps_the_topic_key():
    key = run(everything(), stage="prod", removal="retain", protect=True).one(KEY, "Alarms-topic_key")
    assert key.protect and key.retain_on_delete and key.inputs["deletionWindowInDays"] == 30


# -- bad input -------------------------------------------------------------------------------
def test_a_topic_under_the_aws_managed_key_is_refused():
    def body():
        Alarms("Alarms", topic=SnsTopic("Alerts"))

    with pytest.raises(ComponentError, match=r"alias/aws/sns, which CloudWatch cannot use"):
        run(body)


def test_fifo_topics_are_refused():
    with pytest.raises(ComponentError, match=r"not a standard SNS topic ARN"):
        run(lambda: Alarms("Alarms", topic="arn:aws:sns:us-east-1:123456789012:tasks.fifo"))

    def fifo():
        Alarms("Alarms", topic=SnsTopic("Tasks", fifo=True, kms_key_arn="arn:aws:kms:us-east-1:1:key/a"))

    with pytest.raises(ComponentError, match=r"FIFO topic; CloudWatch alarms notify standard topics only"):
        run(fifo)


def test_the_longest_evaluation_windows_cloudwatch_allows_pass():
    plan = run(lambda: Alarms("Alarms", functions=[Function("Api", handler=HANDLER)], period=3600,
                              evaluation_periods=168))
    assert {a["evaluationPeriods"] for a in alarms(plan).values()} == {168}
    plan = run(lambda: Alarms("Alarms", functions=[Function("Api", handler=HANDLER)], period=300,
                              evaluation_periods=288))
    assert {a["evaluationPeriods"] for a in alarms(plan).values()} == {288}


@pytest.mark.parametrize(("args", "problem"), [
    ({"functions": ["Api"]}, r"functions holds 'Api'; list Function components"),
    ({"queues": ["Jobs"]}, r"queues holds 'Jobs'; list Queue components"),
    ({"period": 90}, r"period 90 must be a multiple of 60"),
    ({"queue_age": 30}, r"queue_age Input should be greater than or equal to 60"),
    ({"period": 300, "evaluation_periods": 289}, r"is 86700s; CloudWatch evaluates at most 86400s \(one day\)"),
    ({"period": 3600, "evaluation_periods": 169}, r"is 608400s; CloudWatch evaluates at most 604800s \(seven"),
])
def test_bad_arguments_are_refused(args, problem):
    with pytest.raises(ComponentError, match=problem):
        run(lambda: Alarms("Alarms", **args))


@pytest.mark.parametrize(("value", "problem"), [
    ({"topicArn": "arn:aws:sqs:us-east-1:123456789012:q"}, r"harbor:alarms.topicArn"),
    ({"emails": ["not-an-address"]}, r"harbor:alarms.emails 'not-an-address' is not an email address"),
    ({"pager": True}, r"harbor:alarms.pager is not a setting"),
])
def test_bad_stage_settings_name_the_key(value, problem):
    with pytest.raises(StageConfigError, match=problem):
        load_stage("prod", "harbor", {"harbor:alarms": json.dumps(value)})
