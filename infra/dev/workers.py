"""Queue subscribers and topic function subscribers, polling the embedded AWS.

A :class:`QueuePoller` does what Lambda's event source mapping does for SQS: it
receives up to the mapping's batch size, calls the handler with an SQS event, deletes
the records that succeeded and, with ``ReportBatchItemFailures``, returns only those
in ``batchItemFailures`` to the queue (all of them when the handler fails). SQS moves
a record to its dead-letter queue after ``maxReceiveCount`` receives. One local
difference: a failed record is visible again at once instead of after the queue's
visibility timeout, so retries (and the dead-letter queue) show up in seconds.

A :class:`StreamPoller` reads a table's stream for its subscriber (filters, retries,
the on-failure queue). A topic's function subscriber gets SNS events: the subscription delivers to a private
queue in the embedded AWS (filter policy included) and a poller calls the function
with one ``aws:sns`` record per message, retrying a failed message twice like SNS.

Scheduled functions (:mod:`infra.dev.schedules`) plug in the same way: anything that
builds an event and calls :func:`invoke_logged`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from infra.dev.aws import EmbeddedAws, subscription_attributes
from infra.dev.functions import FunctionHost, Invocation, LogStream

POLL_SECONDS = 1  # long poll; also how long a stop waits for a poller
SNS_ATTEMPTS = 3


def invoke_logged(host: FunctionHost, event: dict[str, Any], log: LogStream, source: str, detail: str) -> Invocation:
    """Invoke and write the one log line every invocation gets."""
    outcome = host.invoke(event)
    log.service(source, f"{host.spec.label:<24} {detail}  {outcome.summary}  {outcome.duration_ms:.0f} ms")
    return outcome


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda's SQS event carries it."""
    attributes = {
        key: value for key, value in (message.get("Attributes") or {}).items()
    }
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class QueuePoller:
    """Polls one queue for one function, the way an SQS event source mapping does."""

    def __init__(
        self, aws: EmbeddedAws, queue: dict[str, Any], host: FunctionHost, batch_size: int,
        report_failures: bool, log: LogStream,
    ) -> None:
        self.aws = aws
        self.queue = queue
        self.host = host
        self.batch_size = max(1, min(int(batch_size), 10))
        self.report_failures = report_failures
        self.log = log
        self.label = queue["name"].removesuffix(".fifo")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS + 10)

    def _run(self) -> None:
        sqs = self.aws.client("sqs")
        url = sqs.get_queue_url(QueueName=self.queue["name"])["QueueUrl"]
        while not self._stop.is_set():
            try:
                received = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=POLL_SECONDS,
                    AttributeNames=["All"], MessageAttributeNames=["All"],
                )
            except Exception as error:  # the server is stopping, or a bug to show but not die of
                if not self._stop.is_set():
                    self.log.service("queue", f"{self.label}: receive failed: {error}")
                    time.sleep(POLL_SECONDS)
                continue
            messages = received.get("Messages") or []
            if messages:
                self.deliver(sqs, url, messages)

    def deliver(self, sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.queue["arn"], self.aws.region) for m in messages]}
        count = f"{len(messages)} record" + ("s" if len(messages) != 1 else "")
        outcome = invoke_logged(self.host, event, self.log, "queue", f"{self.label}  {count}")
        failed = self.failed_ids(outcome, messages)
        if failed and outcome.ok:
            self.log.service("queue", f"{self.label}  {len(failed)} of {len(messages)} failed: back to the queue")
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )
        retry = [m for m in messages if m["MessageId"] in failed]
        if retry:
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                         for i, m in enumerate(retry)],
            )

    def failed_ids(self, outcome: Invocation, messages: list[dict[str, Any]]) -> set[str]:
        """The records to return to the queue, as Lambda reads the handler's answer."""
        every = {m["MessageId"] for m in messages}
        if not outcome.ok:
            return every
        if not self.report_failures:
            return set()
        answer = outcome.value
        if not isinstance(answer, dict) or answer.get("batchItemFailures") is None:
            return set()
        failures = answer["batchItemFailures"]
        if not isinstance(failures, list):
            return every
        ids = set()
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or identifier not in every:
                return every  # Lambda treats a malformed answer as a failure of the whole batch
            ids.add(identifier)
        return ids


class TopicSubscriber(QueuePoller):
    """Delivers a topic's messages to a function as SNS events (one message per invocation)."""

    def __init__(self, aws: EmbeddedAws, subscription: dict[str, Any], host: FunctionHost, log: LogStream) -> None:
        topic = subscription["topic"]
        name = f"harbor-dev-{topic.rsplit(':', 1)[-1]}-{host.spec.name}"[:80]
        sqs = aws.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = subscription_attributes(subscription)
        attributes.pop("RawMessageDelivery", None)  # the envelope is what SNS hands a function
        self.subscription_arn = aws.client("sns").subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes
        )["SubscriptionArn"]
        super().__init__(aws, {"name": name, "arn": arn}, host, 1, True, log)
        self.label = topic.rsplit(":", 1)[-1]

    def deliver(self, sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            envelope = json.loads(message["Body"])
            record = {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": self.subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId"),
                    "TopicArn": envelope.get("TopicArn"),
                    "Subject": envelope.get("Subject"),
                    "Message": envelope.get("Message"),
                    "Timestamp": envelope.get("Timestamp"),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "MessageAttributes": envelope.get("MessageAttributes") or {},
                },
            }
            outcome = invoke_logged(self.host, {"Records": [record]}, self.log, "topic", f"{self.label}  1 message")
            receives = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
            if outcome.ok or receives >= SNS_ATTEMPTS:
                if not outcome.ok:
                    self.log.service("topic", f"{self.label}  message dropped after {receives} attempts")
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering, for the common rules: exact values, ``prefix``, ``exists``, nesting."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, wanted in pattern.items():
            if isinstance(wanted, list) and any(isinstance(w, dict) and "exists" in w for w in wanted):
                present = key in value
                if not any(isinstance(w, dict) and w.get("exists") == present for w in wanted):
                    return False
                continue
            if key not in value or not matches(wanted, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        for wanted in pattern:
            if isinstance(wanted, dict) and "prefix" in wanted:
                if isinstance(value, str) and value.startswith(wanted["prefix"]):
                    return True
            elif wanted == value:
                return True
        return False
    return pattern == value


class StreamPoller:
    """Reads a DynamoDB table's stream for one function, as a stream event source mapping does.

    Batches of up to the mapping's size, in order; only records matching the mapping's
    filters are delivered. A failing batch (or, with ``ReportBatchItemFailures``, the
    records from the first failed one on) is retried ``maximumRetryAttempts`` times, then
    described to the on-failure destination (an SQS queue) and passed over.
    """

    def __init__(self, aws: EmbeddedAws, mapping: dict[str, Any], host: FunctionHost, log: LogStream) -> None:
        self.aws = aws
        self.mapping = mapping
        self.host = host
        self.log = log
        self.table = mapping["eventSourceArn"].split(":table/", 1)[1].split("/", 1)[0]
        self.batch_size = int(mapping.get("batchSize") or 100)
        retries = mapping.get("maximumRetryAttempts")
        self.retries = 3 if retries is None or int(retries) < 0 else int(retries)
        criteria = (mapping.get("filterCriteria") or {}).get("filters") or []
        self.patterns = [json.loads(f["pattern"]) for f in criteria if f.get("pattern")]
        self.report_failures = "ReportBatchItemFailures" in (mapping.get("functionResponseTypes") or [])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        streams = self.aws.client("dynamodbstreams")
        arn = self.aws.client("dynamodb").describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        position = "TRIM_HORIZON" if self.mapping.get("startingPosition") == "TRIM_HORIZON" else "LATEST"
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=position)["ShardIterator"]
        while not self._stop.is_set():
            try:
                page = streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            except Exception as error:
                if not self._stop.is_set():
                    self.log.service("stream", f"{self.table}: read failed: {error}")
                    self._stop.wait(POLL_SECONDS)
                continue
            iterator = page.get("NextShardIterator") or iterator
            records = [self._record(r) for r in page.get("Records") or []]
            records = [r for r in records if not self.patterns or any(matches(p, r) for p in self.patterns)]
            if records:
                self.deliver(records)
            else:
                self._stop.wait(0.3)

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record.get("dynamodb") or {})
        created = change.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": change, "eventSourceARN": self.mapping["eventSourceArn"]}

    def deliver(self, records: list[dict[str, Any]]) -> None:
        for attempt in range(self.retries + 1):
            outcome = invoke_logged(self.host, {"Records": records}, self.log, "stream",
                                    f"{self.table}  {len(records)} record" + ("s" if len(records) != 1 else ""))
            failed_from = self._failed_from(outcome, records)
            if failed_from is None:
                return
            records = records[failed_from:]
            if attempt < self.retries:
                self.log.service("stream", f"{self.table}  retrying {len(records)} record(s)")
        self.log.service("stream", f"{self.table}  {len(records)} record(s) passed over after {self.retries} retries")
        destination = ((self.mapping.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn")
        if destination and destination.startswith("arn:aws:sqs:"):
            sqs = self.aws.client("sqs")
            url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
                "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": self.retries + 1},
                "DDBStreamBatchInfo": {
                    "startSequenceNumber": records[0]["dynamodb"].get("SequenceNumber"),
                    "endSequenceNumber": records[-1]["dynamodb"].get("SequenceNumber"),
                    "batchSize": len(records), "streamArn": self.mapping["eventSourceArn"],
                },
            }))

    def _failed_from(self, outcome: Invocation, records: list[dict[str, Any]]) -> int | None:
        """None when the batch is done, else the index to retry from."""
        if not outcome.ok:
            return 0
        answer = outcome.value
        if not self.report_failures or not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return None
        numbers = [r["dynamodb"].get("SequenceNumber") for r in records]
        failed = [f.get("itemIdentifier") for f in answer["batchItemFailures"] if isinstance(f, dict)]
        positions = [numbers.index(f) for f in failed if f in numbers]
        return min(positions) if positions and len(positions) == len(failed) else 0
