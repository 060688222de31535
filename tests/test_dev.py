"""``infra dev`` and ``infra shell``: the stage's app running on 127.0.0.1, built from its plan.

One ``infra dev`` per module (a personal stage, so the API demands IAM auth): the tests
talk to it as a user would, through the printed URLs, and the last one stops it. The
unit tests below check the API's routing, events and auth and the queue's failure rules
without starting anything. Every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.dev.api import DEV_USER, ApiServer, authorize, jwt_claims, match_route
from infra.dev.functions import Invocation
from infra.dev.model import RouteSpec
from infra.dev.workers import QueuePoller
from infra.harness import ROOT

INFRA = str(Path(sys.executable).with_name("infra"))
START_SECONDS = 300  # a cold machine builds the sites' archives once and runs initdb


def _free_block(size: int = 8) -> int:
    """A first port with ``size`` free loopback ports after it."""
    for _ in range(200):
        first = 20000 + secrets.randbelow(30000)
        try:
            for port in range(first, first + size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free block of loopback ports")


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the processes listen on, from /proc/net/tcp{,6}."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    found = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                ip = ".".join(str(b) for b in reversed(bytes.fromhex(address))) if len(address) == 8 else address
                found.add((ip, int(port, 16)))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Dev:
    """A running ``infra dev`` subprocess and the lines it printed."""

    def __init__(self, stage: str, port: int, env: dict[str, str]) -> None:
        self.stage = stage
        self.env = env
        self.process = subprocess.Popen(
            [INFRA, "dev", "--stage", stage, "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(line == text for line in self.lines):
                return
            if self.process.poll() is not None and self._queue.empty():
                break
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.5)
        raise AssertionError(f"infra dev never printed {text!r}:\n" + "\n".join(self.lines[-40:]))

    def url(self, service: str) -> str:
        for line in self.lines:
            name, _, rest = line.partition(" ")
            if name == service and rest.strip().startswith("http"):
                return rest.strip()
        raise AssertionError(f"no {service} line in:\n" + "\n".join(self.lines))


@pytest.fixture(scope="module")
def dev():
    root = tempfile.mkdtemp(prefix="harbor-dev-")
    os.chmod(root, 0o755)  # as root, PostgreSQL runs as 'postgres' and must reach its folder
    env = {**os.environ, "HARBOR_DEV_DIR": root, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    running = Dev(f"t{secrets.token_hex(3)}", _free_block(), env)
    try:
        running.wait_for("ready", START_SECONDS)
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                running.process.kill()
        subprocess.run(["rm", "-rf", root], check=False)


def _request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def _aws(dev: Dev, service: str) -> Any:
    return boto3.client(service, endpoint_url=dev.url("aws"), region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


# -- the running app ------------------------------------------------------------------------------


def test_dev_prints_each_service_on_loopback_then_ready(dev: Dev):
    ready = dev.lines.index("ready")
    services = [line.split()[0] for line in dev.lines[:ready] if len(line.split()) > 1 and "://" in line]
    assert {"api", "database", "aws"} <= set(services)
    urls = [line.split()[1] for line in dev.lines[:ready] if "://" in line]
    assert all("@127.0.0.1:" in u or u.startswith("http://127.0.0.1:") for u in urls), urls
    # Every service, in every process it started, listens on loopback only.
    listening = _listening({dev.process.pid} | _descendants(dev.process.pid))
    assert listening and {ip for ip, _ in listening} == {"127.0.0.1"}, listening
    # A fresh stage's SecretKey (no placeholder) got a random local value, said once.
    assert sum("secrets SecretKey:" in line for line in dev.lines) == 1


def test_item_created_through_the_api_is_read_back_and_made_ready_by_the_worker(dev: Dev):
    api = dev.url("api")
    status, created = _request("POST", f"{api}/items", {"name": "Local project", "description": "runs offline"})
    assert status == 201, created
    assert created["status"] == "pending"

    status, read = _request("GET", f"{api}/items/{created['id']}")
    assert status == 200
    assert read["name"] == "Local project" and read["id"] == created["id"]

    # The worker gets the task through the FIFO topic, its filter and the queue.
    deadline = time.monotonic() + 60
    while read["status"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.3)
        read = _request("GET", f"{api}/items/{created['id']}")[1]
    assert read["status"] == "ready" and "readyAt" in read
    status, listed = _request("GET", f"{api}/items?status=ready")
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert any(line.startswith("queue") and "PersonaQueueSubscriber" in line and " ok " in line
               for line in dev.lines)


def test_api_answers_unknown_routes_and_bad_bodies_like_api_gateway(dev: Dev):
    api = dev.url("api")
    assert _request("GET", f"{api}/nowhere") == (404, {"message": "Not Found"})
    status, body = _request("POST", f"{api}/items", {"name": 5})
    assert (status, body["error"]) == (400, "invalid_field")
    status, _ = _request("GET", f"{api}/items/{'0' * 26}")
    assert status == 404


def test_failing_record_lands_in_the_dead_letter_queue_after_the_configured_receives(dev: Dev):
    sqs = _aws(dev, "sqs")
    queue_url = sqs.get_queue_url(QueueName=f"harbor-{dev.stage}-PersonaQueue.fifo")["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
                         ["Attributes"]["RedrivePolicy"])
    dlq_url = sqs.get_queue_url(QueueName=f"harbor-{dev.stage}-PersonaQueue-dlq.fifo")["QueueUrl"]
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="not a task", MessageGroupId="broken")

    landed: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not landed and time.monotonic() < deadline:
        landed = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages") or []
    assert [m["MessageId"] for m in landed] == [sent["MessageId"]]
    assert landed[0]["Body"] == "not a task"
    failures = [line for line in dev.lines if "PersonaQueue  1 of 1 failed" in line]
    assert len(failures) == int(redrive["maxReceiveCount"]) == 3


def test_shell_runs_a_command_with_the_stage_links(dev: Dev):
    script = (
        "from sst import Resource; import boto3;"
        "print(Resource.Table.name);"
        "print(boto3.client('dynamodb').describe_table(TableName=Resource.Table.name)['Table']['TableStatus']);"
        "print(Resource.TaskTopic.arn.split(':')[-1])"
    )
    result = subprocess.run(
        [INFRA, "shell", "--stage", dev.stage, "--", sys.executable, "-c", script],
        cwd=ROOT, env=dev.env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # The shell carries what the stage's functions link (the API handlers: Table, SecretKey, TaskTopic).
    assert result.stdout.split("\n")[:3] == [
        f"harbor-{dev.stage}-Table", "ACTIVE", f"harbor-{dev.stage}-TaskTopic.fifo",
    ]


def test_shell_reaches_every_linkable_resource_even_one_no_function_links(dev: Dev):
    # No function of the program links the database: the shell has it all the same, pointed
    # at the local PostgreSQL, and a migration-like command connects with it.
    psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql")) or [Path(shutil.which("psql") or "psql")]
    script = (
        "import subprocess, sys; from sst import Resource; from harbor_runtime import database_url;"
        "url = database_url(Resource.Database);"
        "print(Resource.Database.host, Resource.Database.type);"
        "sys.exit(subprocess.run([sys.argv[1], url, '-tAc', 'select current_database()']).returncode)"
    )
    result = subprocess.run(
        [INFRA, "shell", "--stage", dev.stage, "--", sys.executable, "-c", script, str(psql[-1])],
        cwd=ROOT, env=dev.env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["127.0.0.1 sst.aws.Postgres", "harbor"]


def test_stop_ends_every_child_process(dev: Dev):
    children = _descendants(dev.process.pid)
    assert len(children) >= 3  # PostgreSQL and the function processes at least
    dev.process.send_signal(signal.SIGINT)
    assert dev.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in children if _alive(pid)] == []


def test_taken_port_is_one_line_naming_it_and_the_flag(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [INFRA, "dev", "--stage", "portcheck", "--port", str(port)],
            cwd=ROOT, env={**os.environ, "HARBOR_DEV_DIR": str(tmp_path)}, capture_output=True, text=True,
            timeout=120,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} (the first API) is already in use; start on other ports with --port"
    ]


# -- the API's local meaning of routes, events and auth -------------------------------------------

ROUTES = [
    RouteSpec("GET /items", "list", "NONE"),
    RouteSpec("GET /items/{id}", "get", "NONE"),
    RouteSpec("GET /items/mine", "mine", "NONE"),
    RouteSpec("ANY /files/{path+}", "files", "NONE"),
    RouteSpec("$default", "fallback", "NONE"),
]


def test_route_matching_prefers_literal_then_parameter_then_greedy_then_default():
    assert match_route(ROUTES, "GET", "/items/mine").route.function == "mine"
    found = match_route(ROUTES, "GET", "/items/01ABC")
    assert (found.route.function, found.parameters) == ("get", {"id": "01ABC"})
    found = match_route(ROUTES, "DELETE", "/files/a/b%20c.txt")
    assert (found.route.function, found.parameters) == ("files", {"path": "a/b c.txt"})
    assert match_route(ROUTES, "POST", "/items").route.function == "fallback"
    assert match_route(ROUTES[:2], "POST", "/items") is None


def _token(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"Bearer {part({'alg': 'RS256'})}.{part(claims)}.not-a-signature"


def test_jwt_routes_read_claims_unverified_or_use_the_dev_user():
    route = RouteSpec("GET /items", "list", "JWT", scopes=["items:read"])
    status, context = authorize(route, {"authorization": _token({"sub": "user_1", "scope": "items:read"})})
    assert status == 0 and context["jwt"]["claims"]["sub"] == "user_1"
    status, context = authorize(route, {})
    assert (status, context["jwt"]["claims"]["sub"], context["jwt"]["scopes"]) == (0, DEV_USER, ["items:read"])
    assert authorize(route, {"authorization": "Bearer garbage"}) == (401, None)
    assert authorize(route, {"authorization": _token({"sub": "u", "scope": "other"})}) == (403, None)
    assert jwt_claims("Bearer a.b") is None


def test_iam_routes_are_the_dev_user():
    status, context = authorize(RouteSpec("GET /items", "list", "AWS_IAM"), {})
    assert status == 0 and context["iam"]["userArn"].endswith(f":user/{DEV_USER}")


def test_event_is_payload_2_0_with_cookies_query_and_base64_binary_bodies():
    server = ApiServer.__new__(ApiServer)
    server.api_id, server.port = "abc123", 4000
    found = match_route(ROUTES, "GET", "/items/42")
    event = server.event(found, "GET", "/items/42", "a=1&a=2&b=", {"cookie": "s=1; t=2", "content-type":
                         "application/octet-stream"}, b"\x00\xff", "127.0.0.1", None)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["s=1", "t=2"] and "cookie" not in event["headers"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x00\xff"
    text = server.event(found, "POST", "/items/42", "", {"content-type": "application/json"}, b"{}", "::1", None)
    assert (text["body"], text["isBase64Encoded"]) == ("{}", False)


def test_response_mapping_follows_api_gateway():
    answer = {"statusCode": 201, "headers": {"X-A": "1"}, "cookies": ["s=1"], "body": "aGk=", "isBase64Encoded": True}
    assert ApiServer.response(Invocation(ok=True, value=answer)) == (201, {"x-a": "1"}, ["s=1"], b"hi")
    assert ApiServer.response(Invocation(ok=True, value={"a": 1}))[::3] == (200, b'{"a": 1}')
    assert ApiServer.response(Invocation(ok=False, error={}))[0] == 500
    assert ApiServer.response(Invocation(ok=False, timed_out=True))[0] == 503


def test_batch_item_failures_decide_what_returns_to_the_queue():
    poller = QueuePoller.__new__(QueuePoller)
    poller.report_failures = True
    batch = [{"MessageId": "a"}, {"MessageId": "b"}]

    def failures(*ids: str) -> Invocation:
        return Invocation(ok=True, value={"batchItemFailures": [{"itemIdentifier": i} for i in ids]})

    assert poller.failed_ids(failures("b"), batch) == {"b"}
    assert poller.failed_ids(Invocation(ok=True, value={"batchItemFailures": []}), batch) == set()
    assert poller.failed_ids(Invocation(ok=True, value=None), batch) == set()
    assert poller.failed_ids(Invocation(ok=False), batch) == {"a", "b"}
    # An identifier that is not in the batch fails the whole batch, as Lambda does.
    assert poller.failed_ids(failures("z"), batch) == {"a", "b"}
    poller.report_failures = False
    assert poller.failed_ids(failures("a"), batch) == set()


# -- a small program, run in this process: topic subscribers, secrets, data kept across restarts ---

SMALL_PROGRAM = '''
from components import Bucket, Dynamo, SnsTopic, declare_secrets, start_app

start_app()
secrets = declare_secrets(["Token", "ApiKey"], placeholders={"ApiKey": "placeholder"})
table = Dynamo("Notes", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
archive = Bucket("Archive")
table.subscribe("Changes", "handlers/changes.handler", filters=[{"eventName": ["INSERT"]}], link=[archive])
notices = SnsTopic("Notices")
notices.subscribe("handlers/record.handler", filter={"kind": ["keep"]}, link=[table, secrets.Token])
'''

CHANGES_HANDLER = '''
import boto3
from sst import Resource


def handler(event, context):
    for record in event["Records"]:
        key = f"{record['eventName']}/{record['dynamodb']['Keys']['pk']['S']}"
        boto3.client("s3").put_object(Bucket=Resource.Archive.name, Key=key, Body=b"")
'''

RECORD_HANDLER = '''
import boto3
from sst import Resource


def handler(event, context):
    record = event["Records"][0]
    boto3.client("dynamodb").put_item(
        TableName=Resource.Notes.name,
        Item={"pk": {"S": record["Sns"]["MessageId"]}, "message": {"S": record["Sns"]["Message"]},
              "source": {"S": record["EventSource"]},
              "kind": {"S": record["Sns"]["MessageAttributes"]["kind"]["Value"]},
              "token": {"S": Resource.Token.value}},
    )
'''


@pytest.fixture
def small_program(tmp_path, monkeypatch):
    program = tmp_path / "program"
    (program / "handlers").mkdir(parents=True)
    (program / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (program / "__main__.py").write_text(SMALL_PROGRAM)
    (program / "handlers" / "record.py").write_text(RECORD_HANDLER)
    (program / "handlers" / "changes.py").write_text(CHANGES_HANDLER)
    store = tmp_path / "store"
    store.mkdir()
    os.chmod(tmp_path, 0o755)
    monkeypatch.setenv("HARBOR_DEV_DIR", str(store))
    return program


def _scan(session: Any) -> list[dict[str, Any]]:
    return session.aws.client("dynamodb").scan(TableName="harbor-bob-Notes")["Items"]


def _archived(session: Any) -> list[str]:
    s3 = session.aws.client("s3")
    bucket = s3.list_buckets()["Buckets"][0]["Name"]
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or []]


def test_topic_and_stream_subscribers_get_their_events_and_data_survives_a_restart(small_program):
    from infra.dev.store import LocalStore
    from infra.dev.supervisor import DevSession

    out = io.StringIO()
    session = DevSession(small_program, "bob", _free_block(), out)
    try:
        session.start()
        sns = session.aws.client("sns")
        topic = "arn:aws:sns:us-east-1:123456789012:harbor-bob-Notices"
        for kind in ("drop", "keep"):
            sns.publish(TopicArn=topic, Message=f"a {kind} notice",
                        MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}})
        deadline = time.monotonic() + 30
        while not (_scan(session) and _archived(session)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # room for the filtered-out message to arrive, were it delivered
        items = _scan(session)
        # The stream subscriber saw the insert (its filter keeps INSERTs only).
        session.aws.client("dynamodb").delete_item(TableName="harbor-bob-Notes", Key={"pk": items[0]["pk"]})
        time.sleep(1.5)
        archived = _archived(session)
        session.aws.client("dynamodb").put_item(TableName="harbor-bob-Notes", Item=items[0])
    finally:
        session.stop()
    token = LocalStore.for_stage(small_program, "bob").secrets()["Token"]
    assert [(i["message"]["S"], i["source"]["S"], i["kind"]["S"], i["token"]["S"]) for i in items] == [
        ("a keep notice", "aws:sns", "keep", token)
    ]
    assert archived == [f"INSERT/{items[0]['pk']['S']}"]
    # Said once: the placeholder stands in for ApiKey, only Token got a random local value.
    assert out.getvalue().count("secrets Token:") == 1 and "ApiKey" not in out.getvalue()

    again = DevSession(small_program, "bob", _free_block(), io.StringIO())
    try:
        again.start()
        assert [i["message"]["S"] for i in _scan(again)] == ["a keep notice"]
        assert "secrets Token" not in again.log._out.getvalue()
    finally:
        again.stop()
    assert LocalStore.for_stage(small_program, "bob").secrets()["Token"] == token


def _host(tmp_path: Path, handler: str, timeout: float = 10) -> Any:
    from infra.dev.functions import FunctionHost, LogStream
    from infra.dev.model import FunctionSpec

    spec = FunctionSpec(name="harbor-bob-Fn", label="Fn", handler=handler, runtime="python3.12",
                        timeout=timeout, memory=128, archive=None, environment={}, links={})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SST_"))}
    return FunctionHost(spec, tmp_path, env, LogStream(io.StringIO()))


def test_python_handler_reloads_when_its_file_changes(tmp_path):
    module = tmp_path / "answer.py"
    module.write_text("def handler(event, context):\n    return {'value': 1, 'got': event}\n")
    host = _host(tmp_path, "answer.handler")
    try:
        assert host.invoke({"n": 1}).value == {"value": 1, "got": {"n": 1}}
        module.write_text("def handler(event, context):\n    return {'value': 2}\n")
        later = time.time() + 2
        os.utime(module, (later, later))
        assert host.invoke({}).value == {"value": 2}
    finally:
        host.stop()


def test_handler_past_its_timeout_is_stopped_and_fails(tmp_path):
    (tmp_path / "slow.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(30)\n")
    host = _host(tmp_path, "slow.handler", timeout=1)
    try:
        outcome = host.invoke({})
        assert (outcome.ok, outcome.timed_out) == (False, True)
        assert host.pid is None
    finally:
        host.stop()


# -- schedules ----------------------------------------------------------------------------------------


def test_cron_expressions_match_the_minutes_aws_fires_them():
    from datetime import UTC, datetime

    from infra.dev.schedules import cron_matches, rate_seconds

    monday_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert cron_matches("cron(0 9 ? * MON-FRI *)", monday_9)
    assert not cron_matches("cron(0 9 ? * SAT,SUN *)", monday_9)
    assert cron_matches("cron(*/15 * * * ? *)", monday_9.replace(minute=45))
    assert not cron_matches("cron(*/15 * * * ? *)", monday_9.replace(minute=50))
    assert cron_matches("cron(0 0 L * ? *)", datetime(2026, 2, 28, tzinfo=UTC))
    assert not cron_matches("cron(0 0 L * ? *)", datetime(2026, 2, 27, tzinfo=UTC))
    assert (rate_seconds("rate(5 minutes)"), rate_seconds("rate(1 day)"), rate_seconds("cron(0 9 * * ? *)")) == (
        300, 86400, None)


def test_schedules_with_function_targets_come_from_the_plan():
    from infra.dev.schedules import jobs_from_plan
    from infra.harness import PlannedResource

    def resource(typ: str, name: str, inputs: dict[str, Any]) -> PlannedResource:
        return PlannedResource("urn:" + name, typ, name, None, True, inputs, False, False)

    function = "arn:aws:lambda:us-east-1:123456789012:function:harbor-bob-Nightly"
    jobs = jobs_from_plan([
        resource("aws:cloudwatch/eventRule:EventRule", "rule",
                 {"name": "nightly", "scheduleExpression": "rate(1 day)"}),
        resource("aws:cloudwatch/eventTarget:EventTarget", "target", {"rule": "nightly", "arn": function}),
        resource("aws:scheduler/schedule:Schedule", "sched", {
            "name": "report", "scheduleExpression": "cron(0 9 * * ? *)",
            "target": {"arn": function, "input": '{"report": "daily"}'}}),
        resource("aws:scheduler/schedule:Schedule", "queue", {
            "name": "toqueue", "scheduleExpression": "rate(1 hour)",
            "target": {"arn": "arn:aws:sqs:us-east-1:123456789012:q"}}),
    ], "us-east-1")
    assert [(j.name, j.expression, j.event.get("detail-type"), j.event.get("report")) for j in jobs] == [
        ("nightly", "rate(1 day)", "Scheduled Event", None),
        ("report", "cron(0 9 * * ? *)", None, "daily"),
    ]


CRON_PROGRAM = '''
from components import Cron, Dynamo, start_app

start_app()
table = Dynamo("Runs", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
Cron("Nightly", schedule="cron(0 3 * * ? *)", function={"handler": "handlers/nightly.handler", "link": [table]},
     input={"report": "daily"})
'''

NIGHTLY_HANDLER = '''
import boto3
from sst import Resource


def handler(event, context):
    boto3.client("dynamodb").put_item(TableName=Resource.Runs.name,
                                      Item={"pk": {"S": event["report"]}})
    return {"wrote": event["report"]}
'''


def test_a_cron_fires_on_demand_from_another_terminal(tmp_path, monkeypatch, capsys):
    from infra.cli import main
    from infra.dev.control import fire_job
    from infra.dev.model import DevError
    from infra.dev.supervisor import DevSession

    program = tmp_path / "program"
    (program / "handlers").mkdir(parents=True)
    (program / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (program / "__main__.py").write_text(CRON_PROGRAM)
    (program / "handlers" / "nightly.py").write_text(NIGHTLY_HANDLER)
    monkeypatch.setenv("HARBOR_DEV_DIR", str(tmp_path / "store"))
    # Nothing running yet: one line, exit 2.
    assert main(["fire", "--stage", "carol", "--program", str(program), "Nightly"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: no infra dev is running for stage 'carol'; start it with `infra dev --stage carol`"
    ]
    session = DevSession(program, "carol", _free_block(), io.StringIO())
    try:
        session.start()
        assert main(["fire", "--stage", "carol", "--program", str(program), "Nightly"]) == 0
        assert capsys.readouterr().out.splitlines()[0].startswith("Nightly: ok in ")
        items = session.aws.client("dynamodb").scan(TableName="harbor-carol-Runs")["Items"]
        with pytest.raises(DevError, match=r"no schedule 'Weekly' runs in this infra dev \(schedules: Nightly\)"):
            fire_job(program, "carol", "Weekly", timeout=10)
    finally:
        session.stop()
    assert items == [{"pk": {"S": "daily"}}]


def test_a_killed_infra_dev_leaves_no_server_behind_and_starts_again_on_its_ports():
    # SIGKILL gives infra dev no chance to stop its children: the kernel must do it.
    root = tempfile.mkdtemp(prefix="harbor-dev-")
    os.chmod(root, 0o755)  # as root, PostgreSQL runs as 'postgres' and must reach its folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {**env, "HARBOR_DEV_DIR": root, "PYTHONUNBUFFERED": "1"}
    stage, port = f"k{secrets.token_hex(3)}", _free_block()
    killed = Dev(stage, port, env)
    children: set[int] = set()
    try:
        killed.wait_for("ready", START_SECONDS)
        children = _descendants(killed.process.pid)
        assert any("postgres" in _command(pid) for pid in children), [_command(p) for p in children]
        killed.process.kill()
        killed.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [_command(pid) for pid in children if _alive(pid)] == []

        # The stage's state file still names the dead process; the same ports are free again.
        again = Dev(stage, port, env)
        try:
            again.wait_for("ready", START_SECONDS)
            assert again.url("api") == killed.url("api")
        finally:
            again.process.send_signal(signal.SIGTERM)
            assert again.process.wait(timeout=60) == 0
    finally:
        for pid in [killed.process.pid, *children]:  # whatever the assertion found alive
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", root], check=False)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# -- infra shell against a deployed stage (a recorded pulumi stands in for the CLI) ---------------

FAKE_PULUMI = '''#!/bin/sh
echo "$@" > "$FAKE_PULUMI_ARGS"
if [ -n "$FAKE_PULUMI_ERROR" ]; then echo "$FAKE_PULUMI_ERROR" >&2; exit 255; fi
cat "$FAKE_PULUMI_OUTPUT"
'''


@pytest.fixture
def deployed(tmp_path, monkeypatch):
    """A fake ``pulumi`` on PATH answering with the prod stage's recorded links."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    links = {
        "Table": {"name": "harbor-prod-Table", "type": "sst.aws.Dynamo"},
        "Database": {"host": "db.cluster-abc.us-east-1.rds.amazonaws.com", "port": 5432, "type": "sst.aws.Postgres"},
    }
    (tmp_path / "links.json").write_text(json.dumps(links))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_OUTPUT", str(tmp_path / "links.json"))
    monkeypatch.setenv("FAKE_PULUMI_ARGS", str(tmp_path / "args"))
    monkeypatch.setenv("HARBOR_DEV_DIR", str(tmp_path / "store"))
    return tmp_path


def test_shell_without_a_running_dev_uses_the_deployed_stages_links(deployed, capfd):
    from infra.cli import main

    script = ("import os; from sst import Resource;"
              "print(Resource.Table.name, Resource.Database.host, Resource.App.stage, os.environ['AWS_REGION'])")
    assert main(["shell", "--stage", "prod", "--", sys.executable, "-c", script]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "harbor-prod-Table db.cluster-abc.us-east-1.rds.amazonaws.com prod us-east-1"
    ]
    assert (deployed / "args").read_text().split() == [
        "stack", "output", "links", "--json", "--show-secrets", "--stack", "prod", "--non-interactive"
    ]


@pytest.mark.parametrize(("error", "expected"), [
    ("error: no stack named 'prod' found", "error: could not read stage 'prod''s outputs with pulumi: "
                                            "no stack named 'prod' found"),
    ("error: current stack does not have output property 'links'",
     "error: stage 'prod' has no 'links' output (deployed before harbor exported it); "
     "run `pulumi up --stack prod` once, then try again"),
])
def test_shell_says_in_one_line_why_the_deployed_stage_cannot_be_read(deployed, monkeypatch, capfd, error, expected):
    from infra.cli import main

    monkeypatch.setenv("FAKE_PULUMI_ERROR", error)
    assert main(["shell", "--stage", "prod", "--", sys.executable, "-c", "print('ran')"]) == 2
    out, err = capfd.readouterr()
    assert (out, err.strip().splitlines()) == ("", [expected])


def test_shell_without_dev_or_pulumi_names_both_ways_out(tmp_path, monkeypatch, capfd):
    from infra.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi here
    monkeypatch.setenv("HARBOR_DEV_DIR", str(tmp_path / "store"))
    assert main(["shell", "--stage", "alice", "--", sys.executable, "-c", "print('ran')"]) == 2
    assert capfd.readouterr().err.strip().splitlines() == [
        "error: no infra dev is running for stage 'alice' and the Pulumi CLI is not installed to read the "
        "deployed stage; start `infra dev --stage alice`, or install Pulumi and log in"
    ]


def test_container_image_functions_are_named_as_not_running_locally(tmp_path, monkeypatch):
    # Seed 002's valuation and migrator are images: infra dev says so instead of skipping silently.
    from infra.dev.model import evaluate
    from infra.dev.store import LocalStore

    monkeypatch.setenv("HARBOR_DEV_DIR", str(tmp_path))
    app = evaluate(ROOT / "examples" / "002-reggie", "dev", LocalStore(tmp_path / "dev"), lambda line: None)
    images = sorted(spec.label for spec in app.functions.values() if spec.image)
    assert images == ["ReggieDbMigrator", "ReggieValuation"]
    assert all(".dkr.ecr." in spec.image for spec in app.functions.values() if spec.image)


def test_shell_says_in_one_line_that_pulumi_is_not_logged_in(deployed, monkeypatch, capfd):
    from infra.cli import main

    monkeypatch.setenv("FAKE_PULUMI_ERROR",
                       "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions")
    assert main(["shell", "--stage", "prod", "--", sys.executable, "-c", "print('ran')"]) == 2
    out, err = capfd.readouterr()
    assert (out, err.strip().splitlines()) == ("", [
        "error: could not read stage 'prod''s outputs with pulumi: PULUMI_ACCESS_TOKEN must be set for login "
        "during non-interactive CLI sessions"
    ])


def test_shell_against_a_deployed_stage_drops_what_an_enclosing_dev_shell_set(deployed, monkeypatch, capfd):
    # Run from inside `infra shell --stage alice`: its local endpoint, test keys and links stay out.
    from infra.cli import main

    for name in [k for k in os.environ if k.startswith(("AWS_", "SST_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4009")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("SST_RESOURCE_Notes", json.dumps({"name": "harbor-alice-Notes"}))
    monkeypatch.setenv("AWS_PROFILE", "mine")
    script = ("import os; print(sorted(k for k in os.environ if k.startswith(('SST_', 'AWS_'))))")
    assert main(["shell", "--stage", "prod", "--", sys.executable, "-c", script]) == 0
    assert capfd.readouterr().out.strip() == str([
        "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_REGION", "SST_RESOURCE_App", "SST_RESOURCE_Database",
        "SST_RESOURCE_Table",
    ])


# -- recovery after a killed infra dev -------------------------------------------------------------


def _postgres(folder: Path, port: int) -> Any:
    from infra.dev.functions import LogStream
    from infra.dev.model import ClusterSpec
    from infra.dev.postgres import LocalPostgres, find_binaries

    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed")
    spec = ClusterSpec("Database", "harbor-k-database", "postgres", "postgres", "arn", "db", "db", [])
    return LocalPostgres(spec, folder, port, binaries, LogStream(io.StringIO()))


def test_restart_stops_the_postgres_a_killed_dev_left_and_clears_a_reused_lock():
    root = tempfile.mkdtemp(prefix="harbor-dev-")
    os.chmod(root, 0o755)  # as root, PostgreSQL runs as 'postgres' and must reach its folder
    try:
        _restart_after_a_crash(Path(root))
    finally:
        subprocess.run(["rm", "-rf", root], check=False)


def _restart_after_a_crash(tmp_path: Path) -> None:
    from infra.dev.postgres import recover

    port = _free_block(1)
    left = _postgres(tmp_path / "db", port)
    left.start()  # stands for the server of an infra dev killed without its kernel's help
    orphan = int((left.data / "postmaster.pid").read_text().split()[0])
    said: list[str] = []
    try:
        recover(left.data, said.append)
        deadline = time.monotonic() + 10
        while left._process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left._process.poll() is not None
        assert said == [f"stopping the PostgreSQL (pid {orphan}) an earlier infra dev left running on {left.data}"]

        # The lock of a server killed outright, its process id now another program's.
        other = subprocess.Popen(["sleep", "60"])
        try:
            (left.data / "postmaster.pid").write_text(f"{other.pid}\n{left.data}\n")
            said.clear()
            recover(left.data, said.append)
            assert said == [f"removing a stale PostgreSQL lock in {left.data} (its process id {other.pid} now "
                            "belongs to another program)"]
            again = _postgres(tmp_path / "db", port)
            again.start()
            again.stop()
        finally:
            other.kill()
            other.wait()
    finally:
        left.stop()


SLOW_PARENT = '''
import io, sys, threading, time
from pathlib import Path
from infra.dev.functions import FunctionHost, LogStream
from infra.dev.model import FunctionSpec

spec = FunctionSpec(name="harbor-k-Slow", label="Slow", handler="slow.handler", runtime="python3.12",
                    timeout=600, memory=128, archive=None, environment={}, links={})
host = FunctionHost(spec, Path(sys.argv[1]), {"PATH": "/usr/bin:/bin"}, LogStream(io.StringIO()))
threading.Thread(target=host.invoke, args=({},), daemon=True).start()
while host.pid is None:
    time.sleep(0.05)
print(host.pid, flush=True)
time.sleep(600)
'''


def test_a_function_busy_in_an_invocation_ends_when_infra_dev_is_killed(tmp_path):
    (tmp_path / "slow.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", SLOW_PARENT, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        runtime = int(parent.stdout.readline())
        time.sleep(1)  # the handler is in its sleep now
        assert _alive(runtime)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(runtime) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(runtime), _command(runtime)
    finally:
        parent.kill()
        with contextlib.suppress(OSError, ValueError, NameError):
            os.kill(runtime, signal.SIGKILL)


def test_shell_against_a_stage_that_assumes_a_role_passes_that_roles_credentials(deployed, monkeypatch, capfd):
    # As the stage's provider does: the role's temporary keys, not the profile beside them.
    from moto.server import ThreadedMotoServer

    from infra.cli import main

    program = deployed / "program"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (program / "Pulumi.ops.yaml").write_text(
        "config:\n  harbor:region: eu-west-1\n  aws:region: eu-west-1\n  harbor:awsProfile: ops\n"
        "  harbor:awsAssumeRole:\n    roleArn: arn:aws:iam::123456789012:role/deploy\n"
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_block(1), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name in [k for k in os.environ if k.startswith(("AWS_", "SST_"))]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")  # STS answers from here
        monkeypatch.setenv("AWS_CONFIG_FILE", str(deployed / "config"))
        (deployed / "config").write_text("[profile ops]\nregion = eu-west-1\n"
                                         "aws_access_key_id = AKIAOPSKEYS\naws_secret_access_key = ops\n")
        script = ("import os; print(os.environ['AWS_ACCESS_KEY_ID'][:4], bool(os.environ['AWS_SESSION_TOKEN']), "
                  "os.environ.get('AWS_PROFILE'), os.environ['AWS_REGION'])")
        assert main(["shell", "--stage", "ops", "--program", str(program), "--", sys.executable, "-c", script]) == 0
    finally:
        server.stop()
    assert capfd.readouterr().out.split() == ["ASIA", "True", "None", "eu-west-1"]


def test_shell_without_a_command_opens_the_users_shell_named_after_the_stage(deployed, monkeypatch, capfd):
    from infra.cli import main

    fake_shell = deployed / "bin" / "fake-shell"
    fake_shell.write_text('#!/bin/sh\necho "$PS1|$SST_RESOURCE_App"\n')
    fake_shell.chmod(0o755)
    monkeypatch.setenv("SHELL", str(fake_shell))
    assert main(["shell", "--stage", "prod"]) == 0
    assert capfd.readouterr().out.splitlines() == ['harbor/prod> |{"name": "harbor", "stage": "prod"}']


IMAGE_PROGRAM = '''
from components import Cron, Dynamo, Function, start_app

start_app()
table = Dynamo("Runs", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
Cron("Nightly", schedule="cron(0 3 * * ? *)",
     function={"handler": "handlers/nightly.handler", "link": [table], "image": True}, input={"report": "image"})
Function("Elsewhere", handler="other/index.handler", image=True, runtime="nodejs20.x")
'''


def test_a_container_image_function_runs_its_python_handler_from_its_folder(tmp_path, monkeypatch):
    from infra.dev.control import fire_job
    from infra.dev.supervisor import DevSession

    program = tmp_path / "program"
    (program / "handlers").mkdir(parents=True)
    (program / "other").mkdir()
    (program / "other" / "index.js").write_text("exports.handler = async () => 1;\n")
    (program / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (program / "__main__.py").write_text(IMAGE_PROGRAM)
    (program / "handlers" / "nightly.py").write_text(NIGHTLY_HANDLER)
    monkeypatch.setenv("HARBOR_DEV_DIR", str(tmp_path / "store"))
    out = io.StringIO()
    session = DevSession(program, "dana", _free_block(), out)
    try:
        session.start()
        answer = fire_job(program, "dana", "Nightly", timeout=60)
        items = session.aws.client("dynamodb").scan(TableName="harbor-dana-Runs")["Items"]
    finally:
        session.stop()
    assert (answer["ok"], answer["value"]) == (True, {"wrote": "image"}), out.getvalue()
    assert items == [{"pk": {"S": "image"}}]
    lines = out.getvalue().splitlines()
    assert [line for line in lines if line.startswith("Elsewhere:")] == [
        "Elsewhere: not served; a container-image function runs in infra dev only when its image is built "
        "from a folder holding its Python handler (index.handler), so its routes, subscriptions and schedules "
        "fail here"
    ]
    assert any(line.startswith("NightlyHandler: its container image's handler runs from ") for line in lines), lines
