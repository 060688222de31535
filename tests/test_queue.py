"""Queue: SQS standard/FIFO, encryption, dead-letter queue, subscriber and visibility rules."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_aws as aws
import pytest

from components import ComponentError
from components.aws.function import Function
from components.aws.queue import Queue
from components.core.linking import link_statements

QUEUE = "aws:sqs/queue:Queue"
ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
WORKER = "app/functions/worker.handler"
ARN = "arn:aws:sqs:us-east-1:123456789012:harbor-{stage}-{name}"


def queues(plan):
    """(main queue, dead-letter queue or None) of the one Queue component in the plan."""
    main = plan.named(f"{plan.one('harbor:aws:Queue').name}-queue")
    dlq = [q for q in plan.of_type(QUEUE) if q.name.endswith("-dlq")]
    return main, (dlq[0] if dlq else None)


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_standard_queue_is_encrypted_tls_only_with_a_dead_letter_queue(build, stage):
    plan = build(lambda: Queue("Jobs"), stage=stage)

    main, dlq = queues(plan)
    assert main.inputs["name"] == f"harbor-{stage}-Jobs"
    assert main.inputs["sqsManagedSseEnabled"] is True
    assert "fifoQueue" not in main.inputs
    assert main.inputs["visibilityTimeoutSeconds"] == 30  # no subscriber: SQS's own default
    assert dlq is not None and dlq.inputs["name"] == f"harbor-{stage}-Jobs-dlq"
    assert dlq.inputs["sqsManagedSseEnabled"] is True
    assert dlq.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    assert json.loads(main.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": ARN.format(stage=stage, name="Jobs-dlq"),
        "maxReceiveCount": 3,
    }
    allow = json.loads(plan.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy").inputs["redriveAllowPolicy"])
    assert allow == {"redrivePermission": "byQueue", "sourceQueueArns": [ARN.format(stage=stage, name="Jobs")]}
    policy = json.loads(plan.one("aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_fifo_queue_gets_the_suffix_deduplication_and_a_fifo_dead_letter_queue(build):
    plan = build(lambda: Queue("PersonaQueue", fifo=True), stage="prod")

    main, dlq = queues(plan)
    assert main.inputs["name"] == "harbor-prod-PersonaQueue.fifo"
    assert main.inputs["fifoQueue"] is True
    assert main.inputs["contentBasedDeduplication"] is True
    assert dlq is not None
    assert dlq.inputs["name"] == "harbor-prod-PersonaQueue-dlq.fifo"
    assert dlq.inputs["fifoQueue"] is True


def test_settings_reach_the_queue(build):
    plan = build(
        lambda: Queue(
            "Jobs",
            fifo=True,
            content_based_deduplication=False,
            delay=5,
            retention=86400,
            visibility_timeout=90,
            dlq={"max_receive_count": 7},
            kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/abc",
        )
    )

    main, _ = queues(plan)
    assert main.inputs["contentBasedDeduplication"] is False
    assert main.inputs["delaySeconds"] == 5
    assert main.inputs["messageRetentionSeconds"] == 86400
    assert main.inputs["visibilityTimeoutSeconds"] == 90
    assert main.inputs["kmsMasterKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/abc"
    assert "sqsManagedSseEnabled" not in main.inputs
    assert json.loads(main.inputs["redrivePolicy"])["maxReceiveCount"] == 7


def test_dead_letter_queue_can_be_turned_off(build):
    plan = build(lambda: Queue("Jobs", dlq=False))

    main, dlq = queues(plan)
    assert dlq is None and "redrivePolicy" not in main.inputs
    assert not plan.of_type("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")


def test_deduplication_on_a_standard_queue_is_refused():
    with pytest.raises(ComponentError, match="content_based_deduplication applies to FIFO queues only"):
        Queue.parse_args("Queue 'Jobs'", None, {"content_based_deduplication": True})


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_subscriber_gets_an_event_source_mapping_with_partial_batch_responses(build, stage):
    def body() -> None:
        Queue("PersonaQueue", fifo=True).subscribe(WORKER, batch_size=5)

    plan = build(body, stage=stage)

    mapping = plan.one(ESM)
    arn = ARN.format(stage=stage, name="PersonaQueue.fifo")
    assert mapping.inputs["eventSourceArn"] == arn
    assert mapping.inputs["functionName"].endswith(f":function:harbor-{stage}-PersonaQueueSubscriber")
    assert mapping.inputs["batchSize"] == 5
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "maximumBatchingWindowInSeconds" not in mapping.inputs
    consumer = plan.named("PersonaQueue-consumer_policy")
    (statement,) = json.loads(consumer.inputs["policy"])["Statement"]
    assert statement["Action"] == ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert statement["Resource"] == [arn]
    assert consumer.inputs["role"].startswith("PersonaQueueSubscriber-role")  # the subscriber's role id
    # Lambda checks the role's access when it creates the mapping.
    assert consumer.urn in mapping.dependencies
    function = plan.one("aws:lambda/function:Function")
    assert function.inputs["handler"].endswith("worker.handler")


def test_subscriber_function_arguments_and_links_go_to_the_new_function(build):
    def body() -> None:
        table = Queue("Other")
        Queue("Jobs").subscribe(WORKER, link=[table], timeout=45, memory=256)

    plan = build(body)

    function = plan.one("aws:lambda/function:Function")
    assert function.inputs["timeout"] == 45 and function.inputs["memorySize"] == 256
    grants = json.loads(plan.named("JobsSubscriber-policy").inputs["policy"])["Statement"]
    assert grants[0]["Resource"] == [ARN.format(stage="dev", name="Other")]


def test_standard_queue_batching_window_and_full_batches(build):
    def body() -> None:
        Queue("Jobs").subscribe(
            WORKER, batch_size=100, batching_window=5, partial_batch_responses=False
        )

    mapping = build(body).one(ESM)

    assert mapping.inputs["batchSize"] == 100
    assert mapping.inputs["maximumBatchingWindowInSeconds"] == 5
    assert "functionResponseTypes" not in mapping.inputs


@pytest.mark.parametrize(
    ("timeout", "expected"), [(None, 120), (60, 360), (3, 30)]
)
def test_unset_visibility_timeout_rises_to_six_times_the_subscriber_timeout(build, timeout, expected):
    def body() -> None:
        extra = {"timeout": timeout} if timeout else {}
        Queue("Jobs").subscribe(WORKER, **extra)

    main, _ = queues(build(body))

    assert main.inputs["visibilityTimeoutSeconds"] == expected


def test_visibility_timeout_set_too_low_is_refused_with_the_value_to_use(build):
    def body() -> None:
        Queue("Jobs", visibility_timeout=60).subscribe(WORKER, timeout=30)

    with pytest.raises(ComponentError, match=r"visibility_timeout 60s is below 6x .* at least 180"):
        build(body)


def test_visibility_timeout_boundary_is_six_times_the_subscribers_timeout(build):
    # A 20 s function: 119 s is refused, 120 s (exactly 6x) is kept.
    with pytest.raises(ComponentError, match=r"visibility_timeout 119s is below 6x .*\(20s\).* at least 120"):
        build(lambda: Queue("Jobs", visibility_timeout=119).subscribe(WORKER, timeout=20))
    main, _ = queues(build(lambda: Queue("Jobs", visibility_timeout=120).subscribe(WORKER, timeout=20)))
    assert main.inputs["visibilityTimeoutSeconds"] == 120


@pytest.mark.parametrize("subscriber", ["handler", "dict", "function"])
def test_a_refused_visibility_timeout_is_refused_before_the_subscriber_is_built(build, monkeypatch, subscriber):
    built: list[str] = []
    init = Function.__init__

    def spying_init(self, name, *args, **kwargs):
        built.append(name)
        init(self, name, *args, **kwargs)

    monkeypatch.setattr(Function, "__init__", spying_init)

    def body() -> None:
        queue = Queue("Jobs", visibility_timeout=60)
        if subscriber == "handler":
            queue.subscribe(WORKER, timeout=30)
        elif subscriber == "dict":
            queue.subscribe({"handler": WORKER, "timeout": 30})
        else:
            queue.subscribe(Function("Worker", handler=WORKER, timeout=30))

    with pytest.raises(ComponentError, match="at least 180"):
        build(body)
    assert "JobsSubscriber" not in built


def test_visibility_timeout_set_high_enough_is_kept(build):
    def body() -> None:
        worker = Function("Worker", handler=WORKER, timeout=10)
        Queue("Jobs", visibility_timeout=600).subscribe(worker)

    main, _ = queues(build(body))

    assert main.inputs["visibilityTimeoutSeconds"] == 600


def test_subscribing_after_the_queue_was_settled_is_refused_not_silently_short(build):
    def body() -> None:
        queue = Queue("Jobs")
        aws.get_caller_identity()  # a synchronous lookup turns the event loop
        queue.subscribe(WORKER, timeout=60)

    with pytest.raises(ComponentError, match="set visibility_timeout=360 explicitly"):
        build(body)


@pytest.mark.parametrize(
    ("queue_args", "subscribe_args", "problem"),
    [
        ({"fifo": True}, {"batching_window": 5}, "FIFO queues deliver without a batching window"),
        ({"fifo": True}, {"batch_size": 11}, "between 1 and 10"),
        ({}, {"batch_size": 50}, "needs a batching_window"),
    ],
)
def test_impossible_batching_is_refused(build, queue_args, subscribe_args, problem):
    with pytest.raises(ComponentError, match=problem):
        build(lambda: Queue("Jobs", **queue_args).subscribe(WORKER, **subscribe_args))


def test_a_second_subscriber_is_refused(build):
    def body() -> None:
        queue = Queue("Jobs")
        queue.subscribe(WORKER)
        queue.subscribe(WORKER)

    with pytest.raises(ComponentError, match="already has a subscriber"):
        build(body)


def test_link_grants_queue_actions_on_this_queue_only_and_exposes_the_url(build):
    def body() -> None:
        queue = Queue("Jobs")
        pulumi.export("statements", link_statements([queue]))
        pulumi.export("properties", queue.link_properties())
        pulumi.export("type", queue.link_type)

    outputs = build(body).outputs

    (statement,) = outputs["statements"]
    # The documented grant (module docstring, README), written out rather than read from
    # the code, so a widened LINK_ACTIONS fails here.
    assert statement["Action"] == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ]
    assert statement["Resource"] == [ARN.format(stage="dev", name="Jobs")]
    assert outputs["properties"] == {"url": "https://sqs.us-east-1.amazonaws.com/123456789012/harbor-dev-Jobs"}
    assert outputs["type"] == "sst.aws.Queue"


def test_a_function_linked_to_a_queue_gets_exactly_the_documented_actions_on_it(build):
    def body() -> None:
        Function("Producer", handler=WORKER, link=[Queue("Jobs")])

    plan = build(body)
    policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            "Resource": [ARN.format(stage="dev", name="Jobs")],
        }
    ]


def test_link_to_a_kms_encrypted_queue_grants_the_key(build):
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"

    def body() -> None:
        pulumi.export("statements", link_statements([Queue("Jobs", kms_key_arn=key)]))

    statements = build(body).outputs["statements"]

    assert statements[1] == {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [key]}


@pytest.mark.parametrize(
    ("fifo", "name", "problem"),
    [
        (True, "j" * 76 + ".fifo", "is 81 characters; AWS allows 80 including '.fifo'"),
        (True, "jobs", "must end with '.fifo'"),
        (False, "j" * 81, "is 81 characters; AWS allows 80"),
        (False, "jobs queue", "holds characters AWS refuses here:  "),
    ],
)
def test_a_queue_name_set_by_a_transform_is_held_to_sqs_rules(build, fifo, name, problem):
    with pytest.raises(ComponentError, match=re.escape(f"Queue 'Jobs': queue: name {name!r} {problem}")):
        build(lambda: Queue("Jobs", fifo=fifo, transform={"queue": {"name": name}}))


def test_a_fifo_queue_name_of_exactly_80_characters_is_accepted(build):
    name = "j" * 75 + ".fifo"
    main, _ = queues(build(lambda: Queue("Jobs", fifo=True, transform={"queue": {"name": name}})))
    assert main.inputs["name"] == name
