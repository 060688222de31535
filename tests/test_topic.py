"""SnsTopic: standard/FIFO topics, encryption, function and queue subscriptions, FIFO rules."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import ComponentError
from components.aws.queue import Queue
from components.aws.topic import SnsTopic
from components.core.linking import link_statements

TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
WORKER = "app/functions/worker.handler"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:harbor-{stage}-{name}"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:harbor-{stage}-{name}"


def fan_out() -> None:
    """Seed 001: a FIFO topic feeding a FIFO queue through a filter, and its worker."""
    tasks = SnsTopic("TaskTopic", fifo=True)
    persona = Queue("PersonaQueue", fifo=True)
    tasks.subscribe_queue("PersonaQueue", persona, filter={"queue": ["persona"]})
    persona.subscribe(WORKER)


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_standard_topic_is_encrypted_with_the_aws_managed_key_and_tls_only(build, stage):
    plan = build(lambda: SnsTopic("Events"), stage=stage)

    topic = plan.one(TOPIC)
    assert topic.inputs["name"] == f"harbor-{stage}-Events"
    assert topic.inputs["kmsMasterKeyId"] == "alias/aws/sns"
    assert "fifoTopic" not in topic.inputs
    policy = plan.one("aws:sns/topicPolicy:TopicPolicy")
    assert policy.inputs["arn"] == TOPIC_ARN.format(stage=stage, name="Events")
    (deny,) = json.loads(policy.inputs["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_fifo_topic_gets_the_suffix_and_content_deduplication(build):
    topic = build(lambda: SnsTopic("TaskTopic", fifo=True), stage="prod").one(TOPIC)

    assert topic.inputs["name"] == "harbor-prod-TaskTopic.fifo"
    assert topic.inputs["fifoTopic"] is True
    assert topic.inputs["contentBasedDeduplication"] is True


def test_customer_key_replaces_the_managed_key_and_joins_the_link(build):
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"

    def body() -> None:
        pulumi.export("statements", link_statements([SnsTopic("Events", kms_key_arn=key)]))

    plan = build(body)

    assert plan.one(TOPIC).inputs["kmsMasterKeyId"] == key
    assert plan.outputs["statements"][1]["Resource"] == [key]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_fifo_fan_out_subscribes_the_queue_with_its_filter_and_lets_only_this_topic_send(build, stage):
    plan = build(fan_out, stage=stage)

    topic_arn = TOPIC_ARN.format(stage=stage, name="TaskTopic.fifo")
    queue_arn = QUEUE_ARN.format(stage=stage, name="PersonaQueue.fifo")
    subscription = plan.one(SUBSCRIPTION)
    assert subscription.inputs["protocol"] == "sqs"
    assert subscription.inputs["topic"] == topic_arn
    assert subscription.inputs["endpoint"] == queue_arn
    assert subscription.inputs["rawMessageDelivery"] is True
    assert json.loads(subscription.inputs["filterPolicy"]) == {"queue": ["persona"]}
    assert subscription.inputs["filterPolicyScope"] == "MessageAttributes"

    # One policy on the queue (its own), carrying the topic's grant: a second one would replace it.
    policy = plan.one(QUEUE_POLICY)
    assert policy.parent == plan.one("harbor:aws:Queue").urn
    allows = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "AllowSNSSend0",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }
    ]
    # SNS confirms the subscription by sending to the queue: the policy must exist first.
    assert policy.urn in subscription.dependencies
    assert plan.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs["eventSourceArn"] == queue_arn


def test_two_topics_share_the_queue_policy(build):
    def body() -> None:
        queue = Queue("Inbox")
        SnsTopic("A").subscribe_queue("Inbox", queue)
        SnsTopic("B").subscribe_queue("Inbox", queue)

    plan = build(body)

    statements = json.loads(plan.one(QUEUE_POLICY).inputs["policy"])["Statement"]
    sources = [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in statements if s["Effect"] == "Allow"]
    assert sources == [TOPIC_ARN.format(stage="dev", name="A"), TOPIC_ARN.format(stage="dev", name="B")]


def test_queue_by_arn_gets_its_own_policy_scoped_to_this_topic(build):
    external = "arn:aws:sqs:us-east-1:123456789012:partner-inbox"

    def body() -> None:
        SnsTopic("Events").subscribe_queue("Partner", external, raw_delivery=False)

    plan = build(body)

    policy = plan.one(QUEUE_POLICY)
    assert policy.inputs["queueUrl"] == "https://sqs.us-east-1.amazonaws.com/123456789012/partner-inbox"
    (allow,) = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Resource"] == external
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": TOPIC_ARN.format(stage="dev", name="Events")}}
    subscription = plan.one(SUBSCRIPTION)
    assert subscription.inputs["rawMessageDelivery"] is False
    assert "filterPolicy" not in subscription.inputs


def test_function_subscription_has_a_permission_scoped_to_this_topic(build):
    def body() -> None:
        SnsTopic("Events").subscribe(WORKER, filter={"kind": ["signup"]}, timeout=15)

    plan = build(body)

    function = plan.one("aws:lambda/function:Function")
    assert function.inputs["name"] == "harbor-dev-EventsWorkerHandler"
    assert function.inputs["timeout"] == 15
    permission = plan.one("aws:lambda/permission:Permission")
    assert permission.inputs["principal"] == "sns.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["sourceArn"] == TOPIC_ARN.format(stage="dev", name="Events")
    assert permission.inputs["function"] == "harbor-dev-EventsWorkerHandler"
    subscription = plan.one(SUBSCRIPTION)
    assert subscription.inputs["protocol"] == "lambda"
    assert subscription.inputs["endpoint"].endswith(":function:harbor-dev-EventsWorkerHandler")
    assert json.loads(subscription.inputs["filterPolicy"]) == {"kind": ["signup"]}
    assert permission.urn in subscription.dependencies


def test_body_filters_use_the_message_body_scope(build):
    def body() -> None:
        SnsTopic("Events").subscribe_queue(
            "Inbox", Queue("Inbox"), filter={"detail": {"kind": ["a"]}}, filter_scope="body"
        )

    assert build(body).one(SUBSCRIPTION).inputs["filterPolicyScope"] == "MessageBody"


@pytest.mark.parametrize(
    ("topic_fifo", "queue", "problem"),
    [
        (False, {"fifo": True}, "is FIFO, and SNS delivers to FIFO queues only from FIFO topics"),
        (False, "arn:aws:sqs:us-east-1:123456789012:q.fifo", "only from FIFO topics"),
    ],
)
def test_fifo_mismatch_between_topic_and_queue_is_refused(build, topic_fifo, queue, problem):
    def body() -> None:
        target = Queue("Inbox", **queue) if isinstance(queue, dict) else queue
        SnsTopic("Events", fifo=topic_fifo).subscribe_queue("Inbox", target)

    with pytest.raises(ComponentError, match=problem):
        build(body)


def test_fifo_topic_delivers_to_a_standard_queue_given_as_its_arn_output_as_seed_001_writes_it(build):
    """SST's subscribeQueue takes ``queue.arn``; the statement still joins the queue's own policy."""

    def body() -> None:
        tasks = SnsTopic("TaskTopic", fifo=True)
        persona = Queue("PersonaQueue")
        tasks.subscribe_queue("PersonaQueue", persona.arn, filter={"queue": ["persona"]})

    plan = build(body)

    queue_arn = QUEUE_ARN.format(stage="dev", name="PersonaQueue")
    subscription = plan.one(SUBSCRIPTION)
    assert subscription.inputs["endpoint"] == queue_arn
    assert subscription.inputs["topic"] == TOPIC_ARN.format(stage="dev", name="TaskTopic.fifo")
    policy = plan.one(QUEUE_POLICY)  # one policy: the queue's own, not a second one per topic
    assert policy.parent == plan.one("harbor:aws:Queue").urn
    (allow,) = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": TOPIC_ARN.format(stage="dev", name="TaskTopic.fifo")}}
    assert policy.urn in subscription.dependencies


def test_fifo_topic_delivers_to_a_standard_queue_component(build):
    def body() -> None:
        SnsTopic("TaskTopic", fifo=True).subscribe_queue("Plain", Queue("Plain"))

    subscription = build(body).one(SUBSCRIPTION)
    assert subscription.inputs["endpoint"] == QUEUE_ARN.format(stage="dev", name="Plain")


def test_topics_feeding_one_external_queue_share_one_policy_with_every_statement(build):
    external = "arn:aws:sqs:us-east-1:123456789012:partner-inbox"

    def body() -> None:
        SnsTopic("A").subscribe_queue("Partner", external)
        SnsTopic("B", fifo=True).subscribe_queue("Partner", external)
        SnsTopic("C").subscribe_queue("Partner", external)

    plan = build(body)

    policy = plan.one(QUEUE_POLICY)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in allows] == [
        TOPIC_ARN.format(stage="dev", name="A"),
        TOPIC_ARN.format(stage="dev", name="B.fifo"),
        TOPIC_ARN.format(stage="dev", name="C"),
    ]
    assert len({s["Sid"] for s in allows}) == 3
    assert all(s["Resource"] == external for s in allows)
    assert [s["Effect"] for s in statements].count("Deny") == 1
    subscriptions = plan.of_type(SUBSCRIPTION)
    assert len(subscriptions) == 3 and all(policy.urn in s.dependencies for s in subscriptions)


def test_fifo_topic_cannot_invoke_a_function_directly(build):
    with pytest.raises(ComponentError, match="SNS FIFO topics cannot invoke Lambda functions"):
        build(lambda: SnsTopic("TaskTopic", fifo=True).subscribe(WORKER))


@pytest.mark.parametrize(
    ("filter", "problem"),
    [({}, "non-empty dict"), ({"kind": "signup"}, "non-empty list"), ({"kind": []}, "non-empty list")],
)
def test_malformed_filters_are_refused(build, filter, problem):
    with pytest.raises(ComponentError, match=problem):
        build(lambda: SnsTopic("Events").subscribe(WORKER, filter=filter))


def test_duplicate_subscription_keys_are_refused(build):
    def body() -> None:
        topic = SnsTopic("Events")
        topic.subscribe_queue("Inbox", Queue("A"))
        topic.subscribe_queue("Inbox", Queue("B"))

    with pytest.raises(ComponentError, match="already has a subscription named 'Inbox'"):
        build(body)


def test_link_grants_publish_on_this_topic_only_and_exposes_the_arn(build):
    def body() -> None:
        topic = SnsTopic("TaskTopic", fifo=True)
        pulumi.export("statements", link_statements([topic]))
        pulumi.export("properties", topic.link_properties())
        pulumi.export("type", topic.link_type)

    outputs = build(body, stage="prod").outputs

    arn = TOPIC_ARN.format(stage="prod", name="TaskTopic.fifo")
    assert outputs["statements"] == [{"Effect": "Allow", "Action": ["sns:Publish"], "Resource": [arn]}]
    assert outputs["properties"] == {"arn": arn}
    assert outputs["type"] == "sst.aws.SnsTopic"


def test_a_fifo_topic_name_set_by_a_transform_is_held_to_sns_rules(build):
    too_long = "t" * 252 + ".fifo"
    expected = r"topic: name 't+\.fifo' is 257 characters; AWS allows 256 including '\.fifo'"
    with pytest.raises(ComponentError, match=expected):
        build(lambda: SnsTopic("Events", fifo=True, transform={"topic": {"name": too_long}}))
    plan = build(lambda: SnsTopic("Events", fifo=True, transform={"topic": {"name": too_long[1:]}}))
    assert plan.one("aws:sns/topic:Topic").inputs["name"] == too_long[1:]
