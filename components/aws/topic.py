"""SnsTopic: an encrypted SNS topic (standard or FIFO) fanning out to functions and queues.

Example (seed 001's fan-out)::

    tasks = SnsTopic("TaskTopic", fifo=True)
    persona = Queue("PersonaQueue", fifo=True)
    tasks.subscribe_queue("PersonaQueue", persona, filter={"queue": ["persona"]})
    persona.subscribe("app/functions/worker.handler", link=[table])

    events = SnsTopic("Events")
    events.subscribe("app/functions/audit.handler", filter={"kind": ["signup"]})

Defaults: encrypted with the AWS managed key ``alias/aws/sns`` (or ``kms_key_arn``), a
topic policy that refuses requests not made over TLS, FIFO topics deduplicating by
content. ``filter`` is an SNS filter policy on message attributes (``filter_scope=
"body"`` filters on the JSON body instead). A queue subscription also lets this
topic, and only this topic, send to the queue; several topics feeding one queue
share that queue's one policy, each with its own statement (a second policy would
replace the first). AWS rules enforced at plan time: a standard topic cannot deliver
to a FIFO queue, and a FIFO topic cannot invoke a function directly (put a queue in
between). A FIFO topic may deliver to a standard queue (seed 001): SNS then keeps
neither order nor exactly-once delivery on that queue.

Linking grants ``sns:Publish`` on this topic only; the handler reads ``Resource.<Name>.arn``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components.aws.queue import Queue, Settling, queue_for_arn
from components.core.base import Component, ComponentArgs
from components.core.linking import Permission
from components.core.policies import allow_service, deny_insecure_transport, policy_json

if TYPE_CHECKING:
    from components.aws.function import Function

AWS_MANAGED_KEY = "alias/aws/sns"
PUBLISH_ACTIONS = ("sns:Publish",)
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,47}$")
FilterScope = Literal["attributes", "body"]
_SCOPES = {"attributes": "MessageAttributes", "body": "MessageBody"}


class SnsTopicArgs(ComponentArgs):
    """Arguments of :class:`SnsTopic`."""

    fifo: bool = Field(False, description="ordered, exactly-once delivery to FIFO queues")
    content_based_deduplication: bool | None = Field(
        None, description="FIFO only: deduplicate by a hash of the body; default on for FIFO"
    )
    kms_key_arn: str | None = Field(
        None, description=f"encrypt with this KMS key; default the AWS managed {AWS_MANAGED_KEY}"
    )

    @model_validator(mode="after")
    def _fifo_only_settings(self) -> SnsTopicArgs:
        if self.content_based_deduplication is not None and not self.fifo:
            raise ValueError(
                "content_based_deduplication applies to FIFO topics only; set fifo=True or drop it"
            )
        return self


def filter_policy(owner: Component, filter: Mapping[str, Any] | None) -> str | None:
    """The filter as SNS's JSON, after the checks SNS would only make at deploy time."""
    if filter is None:
        return None
    if not isinstance(filter, Mapping) or not filter:
        raise owner.fail(
            f"filter {filter!r} must be a non-empty dict of attribute -> list of allowed values, "
            'e.g. {"queue": ["persona"]}'
        )
    for attribute, allowed in filter.items():
        if isinstance(allowed, Mapping):
            continue  # nested, for body filters
        if not isinstance(allowed, list) or not allowed:
            raise owner.fail(
                f"filter {attribute!r}: give a non-empty list of allowed values, such as "
                f'{{"{attribute}": [{allowed!r}]}}'
            )
    return json.dumps(filter, sort_keys=True)


class SnsTopic(Component):
    """An SNS topic.

    Outputs: ``arn``, ``name``. Transformable children: ``topic``, ``policy``,
    ``subscription``, ``permission``, ``queue_policy``.
    """

    type_token: ClassVar[str] = "harbor:aws:SnsTopic"
    sst_type: ClassVar[str] = "sst.aws.SnsTopic"
    Args: ClassVar[type[ComponentArgs]] = SnsTopicArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "topic", "policy", "subscription", "permission", "queue_policy",
    )

    args: SnsTopicArgs

    def __init__(
        self,
        name: str,
        args: SnsTopicArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        self.fifo = a.fifo
        self._keys: set[str] = set()
        fifo_settings = (
            {
                "fifo_topic": True,
                "content_based_deduplication": (
                    True if a.content_based_deduplication is None else a.content_based_deduplication
                ),
            }
            if a.fifo
            else {}
        )
        self.topic = self.child(
            "topic",
            aws.sns.Topic,
            {
                "name": self.physical_name("sns.fifo-topic" if a.fifo else "sns.topic"),
                "kms_master_key_id": a.kms_key_arn or AWS_MANAGED_KEY,
                **fifo_settings,
            },
        )
        self.arn: pulumi.Output[str] = self.topic.arn
        self.name: pulumi.Output[str] = self.topic.name
        # Services allowed to publish (a bucket's notifications) join this one policy later.
        self._publishers: Settling[tuple[str, pulumi.Input[str]]] = Settling()
        publishers = self._publishers.output.apply(
            lambda pending: pulumi.Output.all(*[pulumi.Output.all(service, source) for service, source in pending])
        )
        self.policy = self.child(
            "policy",
            aws.sns.TopicPolicy,
            {
                "arn": self.arn,
                "policy": pulumi.Output.all(self.arn, publishers).apply(
                    lambda parts: _topic_policy(parts[0], [tuple(p) for p in parts[1]])
                ),
            },
        )
        self.register_outputs({"arn": self.arn, "name": self.name})

    def allow_publish_from(self, service: str, source_arn: pulumi.Input[str]) -> aws.sns.TopicPolicy:
        """Let one AWS resource (``source_arn``, through ``service``) publish to this topic.

        The statement joins the topic's one policy; returns that policy, which whatever
        publishes must wait for.
        """
        if not self._publishers.add((service, source_arn)):
            raise self.fail(
                "its topic policy was already handed to the engine when a publisher was added; "
                "connect publishers right after creating the topic, before any synchronous lookup"
            )
        return self.policy

    def _claim(self, key: str) -> str:
        if not _KEY.match(key):
            raise self.fail(
                f"subscription key {key!r} must be letters and digits, starting with a letter "
                "(it names the subscription's resources)"
            )
        if key in self._keys:
            raise self.fail(f"already has a subscription named {key!r}; give each one its own key")
        self._keys.add(key)
        return key

    def subscribe(
        self,
        handler_or_function: Function | str | Mapping[str, Any],
        filter: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        filter_scope: FilterScope = "attributes",
        **function_args: Any,
    ) -> Function:
        """Invoke a function for each message (matching ``filter``); returns the function.

        ``function_args`` (``link=[...]``, ``timeout=...``) go with a handler string.
        """
        from components.aws.function import Function, allow_invoke, function_key, resolve_function

        if self.fifo:
            raise self.fail(
                "SNS FIFO topics cannot invoke Lambda functions; subscribe a FIFO Queue with "
                "subscribe_queue(...) and subscribe the function to that queue"
            )
        if isinstance(handler_or_function, Function):
            default_key = handler_or_function.component_name
            if function_args:
                raise self.fail(
                    f"{sorted(function_args)} configure a new function; pass them to the Function "
                    "you created instead"
                )
            spec: Function | str | Mapping[str, Any] = handler_or_function
        else:
            handler = (
                handler_or_function
                if isinstance(handler_or_function, str)
                else str(handler_or_function.get("handler", ""))
            )
            default_key = function_key(handler.rsplit("/", 1)[-1]) or "Subscriber"
            spec = (
                {"handler": handler_or_function, **function_args}
                if isinstance(handler_or_function, str)
                else {**handler_or_function, **function_args}
            )
        name = self._claim(key or default_key)
        policy = filter_policy(self, filter)
        function = resolve_function(self, name, spec)
        permission = allow_invoke(self, function, "sns.amazonaws.com", self.arn, key=name)
        self.child(
            "subscription",
            aws.sns.TopicSubscription,
            {
                "topic": self.arn,
                "protocol": "lambda",
                "endpoint": function.arn,
                "filter_policy": policy,
                "filter_policy_scope": _SCOPES[filter_scope] if policy else None,
            },
            key=name,
            opts=pulumi.ResourceOptions(depends_on=[permission]),
        )
        return function

    def subscribe_queue(
        self,
        key: str,
        queue: Queue | str,
        filter: Mapping[str, Any] | None = None,
        *,
        raw_delivery: bool = True,
        filter_scope: FilterScope = "attributes",
    ) -> aws.sns.TopicSubscription:
        """Deliver messages (matching ``filter``) to a queue: a :class:`Queue` or a queue ARN.

        ``raw_delivery`` sends the message body as is rather than in SNS's JSON envelope.
        """
        name = self._claim(key)
        policy = filter_policy(self, filter)
        if isinstance(queue, pulumi.Output):
            queue = queue_for_arn(queue) or queue
        if isinstance(queue, Queue):
            self._check_fifo(queue.fifo, f"Queue {queue.component_name!r}")
            queue_arn: pulumi.Input[str] = queue.arn
            # The statement joins the queue's one policy: a second QueuePolicy would replace it.
            sender_policy: pulumi.Resource = queue.allow_send_from("sns.amazonaws.com", self.arn)
        elif isinstance(queue, str | pulumi.Output):
            if isinstance(queue, str):
                if not queue.startswith("arn:") or ":sqs:" not in queue:
                    raise self.fail(f"subscribe_queue({key!r}): {queue!r} is not an SQS queue ARN")
                self._check_fifo(queue.endswith(".fifo"), f"queue {queue!r}")
            queue_arn = queue
            sender_policy = self._external_queue_policy(name, queue)
        else:
            raise self.fail(
                f"subscribe_queue({key!r}) needs a Queue or a queue ARN, not {type(queue).__name__}"
            )
        return self.child(
            "subscription",
            aws.sns.TopicSubscription,
            {
                "topic": self.arn,
                "protocol": "sqs",
                "endpoint": queue_arn,
                "raw_message_delivery": raw_delivery,
                "filter_policy": policy,
                "filter_policy_scope": _SCOPES[filter_scope] if policy else None,
            },
            key=name,
            # SNS confirms an SQS subscription by sending to it; the policy must be there first.
            opts=pulumi.ResourceOptions(depends_on=[sender_policy]),
        )

    def _external_queue_policy(self, key: str, queue_arn: str | pulumi.Output[str]) -> aws.sqs.QueuePolicy:
        """The one policy of a queue given by ARN, shared by every topic that feeds it."""
        shared = self.app.shared
        slot = ("external-queue-policy", queue_arn if isinstance(queue_arn, str) else id(queue_arn))
        if slot not in shared:
            senders: Settling[pulumi.Input[str]] = Settling()
            resource = self.child(
                "queue_policy",
                aws.sqs.QueuePolicy,
                {
                    "queue_url": pulumi.Output.from_input(queue_arn).apply(_queue_url),
                    "policy": pulumi.Output.all(
                        queue_arn, senders.output.apply(lambda pending: pulumi.Output.all(*pending))
                    ).apply(lambda parts: _sns_may_send(parts[0], parts[1])),
                },
                key=key,
            )
            shared[slot] = (resource, senders)
        resource, senders = shared[slot]
        if not senders.add(self.arn):
            raise self.fail(
                f"subscribe_queue({key!r}): the policy of {queue_arn} was already handed to the engine; "
                "subscribe every topic to it before any synchronous lookup"
            )
        return resource

    def _check_fifo(self, queue_is_fifo: bool, what: str) -> None:
        # A FIFO topic may deliver to a standard queue (AWS allows it; order is not kept there).
        if not self.fifo and queue_is_fifo:
            raise self.fail(
                f"{what} is FIFO, and SNS delivers to FIFO queues only from FIFO topics; create "
                "the topic with fifo=True or use a standard queue"
            )

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"arn": self.arn}

    def link_permissions(self) -> Sequence[Permission]:
        grants = [Permission(PUBLISH_ACTIONS, [self.arn])]
        if self.args.kms_key_arn:
            # A customer key must let the publisher encrypt; the AWS managed key does by itself.
            grants.append(Permission(KMS_ACTIONS, [self.args.kms_key_arn]))
        return grants


def _topic_policy(topic_arn: str, publishers: Sequence[tuple[str, str]]) -> str:
    allows = [
        allow_service(f"Allow{service.split('.')[0].upper()}Publish{index}", service, "sns:Publish", topic_arn,
                      source_arn=source_arn)
        for index, (service, source_arn) in enumerate(publishers)
    ]
    return policy_json(deny_insecure_transport("sns:Publish", topic_arn), *allows)


def _queue_url(arn: str) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` -> the queue's URL (what QueuePolicy takes)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


def _sns_may_send(queue_arn: str, topic_arns: Sequence[str]) -> str:
    return policy_json(
        *[
            allow_service(f"AllowTopicSend{index}", "sns.amazonaws.com", "sqs:SendMessage", queue_arn,
                          source_arn=topic_arn)
            for index, topic_arn in enumerate(topic_arns)
        ],
        deny_insecure_transport("sqs:*", queue_arn),
    )
