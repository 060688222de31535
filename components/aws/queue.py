"""Queue: an encrypted SQS queue (standard or FIFO) with a dead-letter queue and a worker.

Example (seed 001's persona worker)::

    persona = Queue("PersonaQueue", fifo=True)
    persona.subscribe("app/functions/worker.handler", link=[table], batch_size=5)

Defaults: SSE-SQS encryption (or SSE-KMS with ``kms_key_arn``), a queue policy that
refuses any request not made over TLS, and a dead-letter queue of the same kind
(FIFO or not) that takes a message after 3 failed receives and keeps it for 14 days.
FIFO queues deduplicate by content unless told otherwise.

``subscribe`` connects one Lambda function through an event source mapping with
partial batch responses (a handler returns ``{"batchItemFailures": [...]}`` and
only those messages are retried) and grants it receive/delete on this queue only.
The visibility timeout must be at least six times the function's timeout (AWS's
advice, so a slow batch is not handed to a second worker): when you leave
``visibility_timeout`` unset it is raised to fit the subscriber; when you set it too
low the program stops and says what to set.

Linking grants send, receive, delete, change visibility, get attributes and get URL on
this queue only; the handler reads ``Resource.<Name>.url``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.core.base import Component, ComponentArgs
from components.core.linking import Permission
from components.core.policies import allow_service, deny_insecure_transport, policy_json

if TYPE_CHECKING:
    from components.aws.function import Function

T = TypeVar("T")

AWS_DEFAULT_VISIBILITY = 30  # seconds; what SQS uses when none is given
VISIBILITY_FACTOR = 6  # AWS: visibility timeout >= 6 x the function timeout
MAX_VISIBILITY = 43200
DLQ_RETENTION = 1209600  # 14 days, the longest SQS keeps a message

LINK_ACTIONS = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ChangeMessageVisibility",
)
CONSUMER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeadLetterQueue(_Strict):
    """Where messages go after failing ``max_receive_count`` times."""

    max_receive_count: int = Field(3, ge=1, le=1000)
    retention: int = Field(DLQ_RETENTION, ge=60, le=DLQ_RETENTION, description="seconds")


class QueueArgs(ComponentArgs):
    """Arguments of :class:`Queue`. Durations are in seconds."""

    fifo: bool = Field(False, description="first-in-first-out with exactly-once processing")
    content_based_deduplication: bool | None = Field(
        None, description="FIFO only: deduplicate by a hash of the body; default on for FIFO"
    )
    visibility_timeout: int | None = Field(
        None,
        ge=0,
        le=MAX_VISIBILITY,
        description="how long a received message stays hidden; default 30, raised to 6x the "
        "subscriber's timeout",
    )
    delay: int = Field(0, ge=0, le=900, description="hide new messages for this long")
    retention: int = Field(345600, ge=60, le=1209600, description="keep messages this long (4 days)")
    kms_key_arn: str | None = Field(None, description="SSE-KMS with this key; default SSE-SQS")
    dlq: bool | DeadLetterQueue = Field(
        True, description="a dead-letter queue (True: 3 receives); False turns it off"
    )

    @model_validator(mode="after")
    def _fifo_only_settings(self) -> QueueArgs:
        if self.content_based_deduplication is not None and not self.fifo:
            raise ValueError(
                "content_based_deduplication applies to FIFO queues only; set fifo=True or drop it"
            )
        return self


class Settling(Generic[T]):
    """A list the program may add to until its body has run, then fixed for the engine.

    A queue is registered when it is created, but its subscriber and the topics that
    may send to it come later in ``__main__.py``. The inputs that depend on them are
    Outputs of this list, settled on the event loop's first turn, which comes after
    the program body (or at the first synchronous invoke, which is why ``add``
    reports whether it was still in time).
    """

    def __init__(self) -> None:
        loop = asyncio.get_event_loop()
        self.items: list[T] = []
        self.settled = False
        self._future: asyncio.Future[list[T]] = loop.create_future()
        loop.call_soon(self._settle)

        async def known() -> bool:
            return True

        self.output: pulumi.Output[list[T]] = pulumi.Output(set(), self._future, known())

    def _settle(self) -> None:
        self.settled = True
        if not self._future.done():
            self._future.set_result(list(self.items))

    def add(self, item: T) -> bool:
        """Add ``item``; False when the engine already has the list."""
        if self.settled:
            return False
        self.items.append(item)
        return True


def queue_for_arn(arn: object) -> Queue | None:
    """The Queue whose ``arn`` output this is, if any was created in this program."""
    from components.core.context import current_app

    found = current_app().shared.get(("queue-by-arn", id(arn)))
    return found if isinstance(found, Queue) and found.arn is arn else None


class Queue(Component):
    """An SQS queue.

    Outputs: ``url``, ``arn``, ``name``; ``dead_letter_queue`` is the DLQ resource (or None).
    Transformable children: ``queue``, ``dlq``, ``redrive_allow``, ``policy``,
    ``event_source_mapping``, ``consumer_policy``.
    """

    type_token: ClassVar[str] = "harbor:aws:Queue"
    sst_type: ClassVar[str] = "sst.aws.Queue"
    Args: ClassVar[type[ComponentArgs]] = QueueArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "queue", "dlq", "redrive_allow", "policy", "event_source_mapping", "consumer_policy",
    )

    args: QueueArgs

    def __init__(
        self,
        name: str,
        args: QueueArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        self.fifo = a.fifo
        self.subscriber: Function | None = None
        kind = "sqs.fifo-queue" if a.fifo else "sqs.queue"
        encryption = self._encryption()
        fifo_settings = (
            {
                "fifo_queue": True,
                "content_based_deduplication": (
                    True if a.content_based_deduplication is None else a.content_based_deduplication
                ),
            }
            if a.fifo
            else {}
        )

        self.dead_letter_queue: aws.sqs.Queue | None = None
        redrive: pulumi.Output[str] | None = None
        dead_letter = DeadLetterQueue() if a.dlq is True else a.dlq or None
        if dead_letter is not None:
            self.dead_letter_queue = self.child(
                "dlq",
                aws.sqs.Queue,
                {
                    "name": self.physical_name(kind, suffix="-dlq"),
                    "message_retention_seconds": dead_letter.retention,
                    **({"fifo_queue": True} if a.fifo else {}),
                    **encryption,
                },
            )
            redrive = self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": dead_letter.max_receive_count}
                )
            )

        # Unset visibility follows the subscriber, which is only known later (see Settling).
        self._visibility_needs: Settling[int] = Settling()
        visibility: pulumi.Input[int] = (
            a.visibility_timeout
            if a.visibility_timeout is not None
            else self._visibility_needs.output.apply(
                lambda needs: max([AWS_DEFAULT_VISIBILITY, *needs])
            )
        )
        self.queue = self.child(
            "queue",
            aws.sqs.Queue,
            {
                "name": self.physical_name(kind),
                "visibility_timeout_seconds": visibility,
                "delay_seconds": a.delay,
                "message_retention_seconds": a.retention,
                "redrive_policy": redrive,
                **fifo_settings,
                **encryption,
            },
        )
        self.url: pulumi.Output[str] = self.queue.url
        self.arn: pulumi.Output[str] = self.queue.arn
        self.name: pulumi.Output[str] = self.queue.name
        # So a topic given ``queue.arn`` (as SST's subscribeQueue takes it) finds this queue.
        self.app.shared[("queue-by-arn", id(self.arn))] = self

        if self.dead_letter_queue is not None:
            # Only this queue may move messages into its DLQ.
            self.child(
                "redrive_allow",
                aws.sqs.RedriveAllowPolicy,
                {
                    "queue_url": self.dead_letter_queue.url,
                    "redrive_allow_policy": self.arn.apply(
                        lambda arn: json.dumps(
                            {"redrivePermission": "byQueue", "sourceQueueArns": [arn]}
                        )
                    ),
                },
            )

        self._senders: Settling[tuple[str, pulumi.Input[str]]] = Settling()
        self.policy = self.child(
            "policy",
            aws.sqs.QueuePolicy,
            {"queue_url": self.url, "policy": self._policy_document()},
        )
        self.register_outputs({"url": self.url, "arn": self.arn, "name": self.name})

    def _encryption(self) -> dict[str, Any]:
        if self.args.kms_key_arn:
            # Reusing a data key for 5 minutes keeps KMS calls (and cost) down.
            return {
                "kms_master_key_id": self.args.kms_key_arn,
                "kms_data_key_reuse_period_seconds": 300,
            }
        return {"sqs_managed_sse_enabled": True}

    def _policy_document(self) -> pulumi.Output[str]:
        def document(arn: str, senders: list[tuple[str, str]]) -> str:
            allows = [
                allow_service(
                    f"Allow{service.split('.')[0].upper()}Send{index}", service, "sqs:SendMessage", arn,
                    source_arn=source_arn,
                )
                for index, (service, source_arn) in enumerate(senders)
            ]
            return policy_json(deny_insecure_transport("sqs:*", arn), *allows)

        senders = self._senders.output.apply(
            lambda pending: pulumi.Output.all(
                *[pulumi.Output.all(service, source) for service, source in pending]
            )
        )
        return pulumi.Output.all(self.arn, senders).apply(
            lambda parts: document(parts[0], [tuple(s) for s in parts[1]])
        )

    def allow_send_from(self, service: str, source_arn: pulumi.Input[str]) -> aws.sqs.QueuePolicy:
        """Let one AWS resource (``source_arn``, through ``service``) send to this queue.

        The statement joins this queue's own policy: a queue has exactly one policy, so
        a second ``QueuePolicy`` (one per topic) would overwrite the first.
        """
        if not self._senders.add((service, source_arn)):
            raise self.fail(
                "its queue policy was already handed to the engine when a sender was added; "
                "subscribe it to topics right after creating it, before any synchronous lookup"
            )
        return self.policy

    # -- subscribers -------------------------------------------------------------------------
    def subscribe(
        self,
        handler_or_function: Function | str | Mapping[str, Any],
        *,
        batch_size: int = 10,
        batching_window: int = 0,
        partial_batch_responses: bool = True,
        **function_args: Any,
    ) -> Function:
        """Process this queue's messages with a function; returns that function.

        ``handler_or_function`` is a Function, a handler string or a dict of Function
        arguments; ``function_args`` (``link=[...]``, ``timeout=...``) go with a handler
        string. ``batching_window`` (seconds) lets a standard queue gather fuller batches.
        """
        from components.aws.function import Function, resolve_function

        if self.subscriber is not None:
            raise self.fail(
                "already has a subscriber; consumers of one queue compete for its messages, so "
                "fan out with an SnsTopic and one queue per consumer instead"
            )
        self._check_batching(batch_size, batching_window)
        spec: Function | str | Mapping[str, Any] = handler_or_function
        if function_args:
            if isinstance(spec, Function):
                raise self.fail(
                    f"{sorted(function_args)} configure a new function; pass them to the Function "
                    "you created instead"
                )
            spec = {"handler": spec, **function_args} if isinstance(spec, str) else {**spec, **function_args}
        # The visibility rule is checked before the subscriber exists, so a refusal leaves
        # no function behind.
        timeout = _planned_timeout(spec)
        if timeout is not None:
            self._fit_visibility(timeout)
        function = resolve_function(self, "Subscriber", spec)
        if timeout is None:
            self._fit_visibility(function.timeout_seconds)
        self.subscriber = function

        grants = [Permission(CONSUMER_ACTIONS, [self.arn])]
        if self.args.kms_key_arn:
            grants.append(Permission(("kms:Decrypt",), [self.args.kms_key_arn]))
        statements = pulumi.Output.all(*[grant.statement() for grant in grants])
        consumer_policy = self.child(
            "consumer_policy",
            aws.iam.RolePolicy,
            {
                "role": function.role.id,
                "policy": statements.apply(
                    lambda s: json.dumps({"Version": "2012-10-17", "Statement": s}, sort_keys=True)
                ),
            },
        )
        self.child(
            "event_source_mapping",
            aws.lambda_.EventSourceMapping,
            {
                "event_source_arn": self.arn,
                "function_name": function.arn,
                "batch_size": batch_size,
                "maximum_batching_window_in_seconds": batching_window or None,
                "function_response_types": (
                    ["ReportBatchItemFailures"] if partial_batch_responses else None
                ),
                "enabled": True,
            },
            # Lambda checks the role can read the queue when the mapping is created.
            opts=pulumi.ResourceOptions(depends_on=[consumer_policy]),
        )
        return function

    def _check_batching(self, batch_size: int, batching_window: int) -> None:
        limit = 10 if self.fifo else 10000
        if not 1 <= batch_size <= limit:
            raise self.fail(f"batch_size {batch_size} must be between 1 and {limit} for this queue")
        if not 0 <= batching_window <= 300:
            raise self.fail(f"batching_window {batching_window} must be 0-300 seconds")
        if self.fifo and batching_window:
            raise self.fail("FIFO queues deliver without a batching window; drop batching_window")
        if batch_size > 10 and not batching_window:
            raise self.fail(
                f"batch_size {batch_size} above 10 needs a batching_window of at least 1 second"
            )

    def _fit_visibility(self, timeout: int) -> None:
        """Hold the visibility timeout to at least 6x the subscriber's ``timeout`` (seconds)."""
        needed = VISIBILITY_FACTOR * timeout
        chosen = self.args.visibility_timeout
        if chosen is not None:
            if chosen < needed:
                raise self.fail(
                    f"visibility_timeout {chosen}s is below {VISIBILITY_FACTOR}x the subscriber's "
                    f"timeout ({timeout}s), so a slow batch would be delivered "
                    f"twice; set visibility_timeout to at least {needed}, or leave it unset"
                )
            return
        if needed > MAX_VISIBILITY:
            raise self.fail(
                f"the subscriber's timeout {timeout}s needs a visibility timeout "
                f"of {needed}s, above SQS's {MAX_VISIBILITY}s; lower the function's timeout"
            )
        if not self._visibility_needs.add(needed):
            raise self.fail(
                "the queue was already handed to the engine when the subscriber was added; "
                f"set visibility_timeout={needed} explicitly or subscribe right after creating it"
            )

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"url": self.url}

    def link_permissions(self) -> Sequence[Permission]:
        grants = [Permission(LINK_ACTIONS, [self.arn])]
        if self.args.kms_key_arn:
            grants.append(Permission(KMS_ACTIONS, [self.args.kms_key_arn]))
        return grants


def _planned_timeout(spec: Any) -> int | None:
    """The timeout (seconds) the subscriber will have, when known before it is created."""
    from components.aws.function import Function, FunctionArgs

    if isinstance(spec, Function):
        return spec.timeout_seconds
    timeout = spec.get("timeout") if isinstance(spec, Mapping) else None
    if timeout is None:
        return FunctionArgs.model_fields["timeout"].default
    return timeout if isinstance(timeout, int) and not isinstance(timeout, bool) else None
