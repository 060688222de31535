"""Alarms: function errors and throttles, queue age and dead-letter depth, notifying a topic.

Example (seed 003's monitoring)::

    Alarms(
        "Alarms",
        functions=[api_handler, reminders.function],
        queues=[persona],            # age of its oldest message, and its dead-letter queue's depth
        crons=[reminders],           # the schedule's dead-letter queue
        queue_age=600,
    )

The stage decides (``harbor:alarms`` in ``Pulumi.<stage>.yaml``, see ``stages.model.AlarmSettings``):
``enabled`` (false on dev and personal stages, so nobody is paged for a laptop stage),
``topicArn`` (an existing standard topic to notify) and ``emails`` (subscribed to the topic).

Without a topic the component creates one, ``{app}-{stage}-{name}``, encrypted with its own
KMS key: CloudWatch cannot publish to a topic under the AWS managed key ``alias/aws/sns``
(its key policy cannot grant CloudWatch ``kms:GenerateDataKey``), so the key's policy grants
CloudWatch exactly that, and the topic's policy lets only this account's alarms publish. For
the same reason an ``SnsTopic`` without ``kms_key_arn``, and any FIFO topic, is refused.

Each alarm notifies on ALARM and on OK, treats missing data as fine (an idle function is
healthy) and is named ``{app}-{stage}-{target}-{metric}``:

* ``<Function>-errors``: ``AWS/Lambda Errors`` sum >= ``errors`` in ``period`` seconds;
* ``<Function>-throttles``: ``AWS/Lambda Throttles`` sum >= ``throttles``;
* ``<Queue>-age``: ``AWS/SQS ApproximateAgeOfOldestMessage`` maximum >= ``queue_age`` seconds;
* ``<Queue>-dlq``: ``ApproximateNumberOfMessagesVisible`` maximum >= 1 on its dead-letter queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components.aws.cron import Cron
from components.aws.function import Function
from components.aws.queue import Queue
from components.aws.topic import SnsTopic
from components.core.base import Component, ComponentArgs
from components.core.policies import policy_json

TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")


class AlarmsArgs(ComponentArgs):
    """Arguments of :class:`Alarms`."""

    functions: list[Any] = Field(default_factory=list, description="Function components: errors and throttles")
    queues: list[Any] = Field(default_factory=list, description="Queue components: age, and DLQ depth")
    crons: list[Any] = Field(default_factory=list, description="Cron components: their DLQ depth")
    topic: Any = Field(
        None, description="a standard SNS topic ARN or an SnsTopic with kms_key_arn; default: the stage's "
        "alarms.topicArn, else a topic of its own"
    )
    errors: int = Field(1, ge=1, description="function errors in one period that raise the alarm")
    throttles: int = Field(1, ge=1, description="throttled invocations in one period that raise the alarm")
    queue_age: int = Field(900, ge=60, le=1209600, description="seconds the oldest message may wait")
    period: int = Field(300, ge=60, le=86400, description="seconds per evaluation (a multiple of 60)")
    evaluation_periods: int = Field(1, ge=1, le=10080, description="periods that must breach in a row")

    @field_validator("period")
    @classmethod
    def _minutes(cls, period: int) -> int:
        if period % 60:
            raise ValueError(f"period {period} must be a multiple of 60 seconds (CloudWatch's standard resolution)")
        return period

    @model_validator(mode="after")
    def _evaluation_window(self) -> AlarmsArgs:
        # CloudWatch's PutMetricAlarm limit: 7 days in all, 1 day for periods under an hour.
        limit = 86400 if self.period < 3600 else 604800
        window = self.period * self.evaluation_periods
        if window > limit:
            raise ValueError(
                f"period x evaluation_periods is {window}s; CloudWatch evaluates at most {limit}s "
                f"({'one day' if limit == 86400 else 'seven days'}) with a {self.period}s period"
            )
        return self

    @field_validator("functions")
    @classmethod
    def _functions(cls, items: list[Any]) -> list[Any]:
        return _all_of(items, Function, "functions", "Function components")

    @field_validator("queues")
    @classmethod
    def _queues(cls, items: list[Any]) -> list[Any]:
        return _all_of(items, Queue, "queues", "Queue components")

    @field_validator("crons")
    @classmethod
    def _crons(cls, items: list[Any]) -> list[Any]:
        return _all_of(items, Cron, "crons", "Cron components")

    @field_validator("topic")
    @classmethod
    def _topic(cls, topic: Any) -> Any:
        if topic is None:
            return topic
        if isinstance(topic, SnsTopic):
            if topic.args.fifo:
                raise ValueError("topic is a FIFO topic; CloudWatch alarms notify standard topics only")
            if topic.args.kms_key_arn is None:
                raise ValueError(
                    "topic is encrypted with alias/aws/sns, which CloudWatch cannot use; give the SnsTopic "
                    "a kms_key_arn whose key policy allows cloudwatch.amazonaws.com, or leave topic unset"
                )
            return topic
        if isinstance(topic, str):
            if not TOPIC_ARN.match(topic):
                raise ValueError(f"topic {topic!r} is not a standard SNS topic ARN (FIFO topics are refused)")
            return topic
        raise ValueError(f"topic must be an SNS topic ARN or an SnsTopic, not {topic!r}")


def _all_of(items: list[Any], kind: type, field: str, what: str) -> list[Any]:
    for item in items:
        if not isinstance(item, kind):
            raise ValueError(f"{field} holds {item!r}; list {what}")
    return items


class Alarms(Component):
    """CloudWatch alarms for functions and queues. ``topic_arn`` is where they notify.

    Python attributes: ``alarms`` (name -> ``aws.cloudwatch.MetricAlarm``), ``topic_arn``
    (None when the stage has alarms off). Transformable children: ``alarm``, ``topic``,
    ``topic_key``, ``topic_policy``, ``subscription``.
    """

    type_token: ClassVar[str] = "harbor:aws:Alarms"
    Args: ClassVar[type[ComponentArgs]] = AlarmsArgs
    transformable: ClassVar[tuple[str, ...]] = ("alarm", "topic", "topic_key", "topic_policy", "subscription")

    args: AlarmsArgs

    def __init__(
        self,
        name: str,
        args: AlarmsArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        settings = self.stage.alarms
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self.topic_arn: pulumi.Output[str] | None = None
        if not settings.enabled:
            self.register_outputs({})
            return

        self.topic_arn = self._topic()
        for email in settings.emails:
            self.child(
                "subscription",
                aws.sns.TopicSubscription,
                {"topic": self.topic_arn, "protocol": "email", "endpoint": email},
                key=re.sub(r"[^A-Za-z0-9]+", "-", email),
            )

        for function in a.functions:
            dimensions = {"FunctionName": function.name}
            self._alarm(f"{function.component_name}-errors", "AWS/Lambda", "Errors", "Sum", a.errors, dimensions,
                        f"{function.component_name} raised errors")
            self._alarm(f"{function.component_name}-throttles", "AWS/Lambda", "Throttles", "Sum", a.throttles,
                        dimensions, f"{function.component_name} was throttled")
        for queue in a.queues:
            self._alarm(f"{queue.component_name}-age", "AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum",
                        a.queue_age, {"QueueName": queue.name},
                        f"a message waited {a.queue_age}s or more in {queue.component_name}")
            if queue.dead_letter_queue is not None:
                self._dlq_alarm(queue.component_name, queue.dead_letter_queue)
        for cron in a.crons:
            if cron.dead_letter_queue is not None:
                self._dlq_alarm(cron.component_name, cron.dead_letter_queue)
        self.register_outputs({"topicArn": self.topic_arn})

    def _topic(self) -> pulumi.Output[str]:
        topic = self.args.topic
        if isinstance(topic, SnsTopic):
            return topic.arn
        if isinstance(topic, str):
            return pulumi.Output.from_input(topic)
        if self.stage.alarms.topic_arn:
            return pulumi.Output.from_input(self.stage.alarms.topic_arn)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        region = self.stage.region
        key = self.child(
            "topic_key",
            aws.kms.Key,
            {
                "description": f"{self.physical_name()} alarm notifications",
                "enable_key_rotation": True,
                "deletion_window_in_days": 7 if self.stage.removal == "remove" else 30,
                "policy": account.apply(lambda acct: _key_policy(acct)),
            },
        )
        created = self.child(
            "topic",
            aws.sns.Topic,
            {"name": self.physical_name("sns.topic"), "kms_master_key_id": key.arn},
        )
        self.child(
            "topic_policy",
            aws.sns.TopicPolicy,
            {
                "arn": created.arn,
                "policy": pulumi.Output.all(created.arn, account).apply(
                    lambda parts: policy_json(
                        {
                            "Sid": "AlarmsPublish",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": parts[0],
                            "Condition": {
                                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{parts[1]}:alarm:*"},
                                "StringEquals": {"aws:SourceAccount": parts[1]},
                            },
                        }
                    )
                ),
            },
        )
        return created.arn

    def _dlq_alarm(self, owner: str, dlq: aws.sqs.Queue) -> None:
        self._alarm(f"{owner}-dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 1,
                    {"QueueName": dlq.name}, f"messages reached {owner}'s dead-letter queue")

    def _alarm(
        self,
        key: str,
        namespace: str,
        metric: str,
        statistic: str,
        threshold: int,
        dimensions: dict[str, pulumi.Input[str]],
        description: str,
    ) -> None:
        a = self.args
        assert self.topic_arn is not None
        self.alarms[key] = self.child(
            "alarm",
            aws.cloudwatch.MetricAlarm,
            {
                "name": self.physical_name("cloudwatch.alarm", name=key),
                "alarm_description": description,
                "namespace": namespace,
                "metric_name": metric,
                "statistic": statistic,
                "dimensions": dimensions,
                "period": a.period,
                "evaluation_periods": a.evaluation_periods,
                "threshold": threshold,
                "comparison_operator": "GreaterThanOrEqualToThreshold",
                "treat_missing_data": "notBreaching",
                "alarm_actions": [self.topic_arn],
                "ok_actions": [self.topic_arn],
            },
            key=key,
        )


def _key_policy(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        },
        sort_keys=True,
    )
