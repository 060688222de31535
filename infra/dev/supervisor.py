"""``infra dev``: start every local service for a stage, print their URLs, stop them all.

Order: evaluate the program, check every port, start the embedded AWS and create the
plan's resources in it, start each PostgreSQL, write each function's link file with
local addresses, start the HTTP APIs, the queue and topic subscribers and ``next dev``;
then print one line per service and ``ready``. SIGINT or SIGTERM stops everything it
started, in reverse order, and the command exits 0.

Ports: ``--port N`` is the first API's; the other APIs, the sites, the databases and the
embedded AWS take the next ones, in that order (each group by name).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from components.core.linking import encode_links
from infra.dev.aws import EmbeddedAws, database_secret_arn, provision, restore_data, save_data
from infra.dev.functions import FunctionHost, LogStream, find_source, unpack
from infra.dev.model import DevError, FunctionSpec, evaluate
from infra.dev.store import LocalStore

DEFAULT_PORT = 4000


def check_port(port: int, what: str) -> None:
    """Fail with one line when ``port`` on 127.0.0.1 is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise DevError(f"port {port} ({what}) is already in use; start on other ports with --port") from None


def rewrite(value: Any, replacements: dict[str, str]) -> Any:
    """Every deployed-looking address in ``value`` replaced by its local one."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: rewrite(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, replacements) for v in value]
    return value


def base_environment() -> dict[str, str]:
    """This process's environment without AWS or SST settings: handlers reach only local services."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SST_"))}


class DevSession:
    """Everything one ``infra dev`` run starts, so it can stop all of it."""

    def __init__(self, program_dir: Path, stage: str, port: int, out: IO[str] | None = None) -> None:
        self.program_dir = program_dir
        self.stage = stage
        self.port = port
        self.log = LogStream(out)
        self.store = LocalStore.for_stage(program_dir, stage)
        self._stoppers: list[tuple[str, Callable[[], None]]] = []
        self.hosts: dict[str, FunctionHost] = {}
        self.lines: list[tuple[str, str]] = []

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        from infra.dev.api import ApiServer
        from infra.dev.control import ControlDesk
        from infra.dev.nextdev import NextDev
        from infra.dev.postgres import LocalPostgres, find_binaries, recover
        from infra.dev.schedules import Scheduler, jobs_from_plan
        from infra.dev.workers import QueuePoller, StreamPoller, TopicSubscriber

        if self.store.read_state() is not None:
            raise DevError(f"infra dev is already running for stage {self.stage!r} (pid "
                           f"{self.store.read_state()['pid']}); stop it first")
        check_port(self.port, "the first API")  # before the slow part, so a taken port fails at once
        app = evaluate(self.program_dir, self.stage, self.store, self.log.write)
        self.app = app

        # By name: the engine registers resources concurrently, so plan order can vary between
        # runs, and each service should keep its port from one run to the next.
        ports = iter(range(self.port, self.port + 1000))
        api_ports = [(api, next(ports)) for api in sorted(app.apis, key=lambda a: a.label)]
        sites = sorted(
            (s for s in app.sites if s.path is not None and (self.program_dir / s.path / "node_modules").is_dir()),
            key=lambda s: s.label,
        )
        site_ports = [(site, next(ports)) for site in sites]
        database_ports = [(cluster, next(ports)) for cluster in sorted(app.clusters, key=lambda c: c.label)]
        aws_port = next(ports)
        for api, port in api_ports:
            check_port(port, api.label.lower())
        for site, port in site_ports:
            check_port(port, site.label.lower())
        for cluster, port in database_ports:
            # A killed infra dev may have left its server running on this folder, holding the port.
            recover(self.store.path / "postgres" / cluster.label / "data", self.log.write)
            check_port(port, cluster.label.lower())
        check_port(aws_port, "aws")

        aws = EmbeddedAws(aws_port, app.region)
        aws.start()
        self._stoppers.append(("aws", aws.stop))
        self.aws = aws

        databases: dict[str, dict[str, str]] = {}
        replacements: dict[str, str] = {}
        database_links: dict[str, dict[str, Any]] = {}
        binaries = find_binaries() if database_ports else None
        for cluster, port in database_ports:
            server = LocalPostgres(cluster, self.store.folder("postgres", cluster.label), port,
                                   binaries or Path("/nonexistent"), self.log)
            if binaries is None:
                self.lines.append((cluster.label.lower(), "skipped: PostgreSQL is not installed (Debian: "
                                   "apt-get install postgresql); links still point at " + server.url))
            else:
                server.start()
                self._stoppers.append((cluster.label, server.stop))
                self.lines.append((cluster.label.lower(), server.url))
            databases[cluster.identifier] = {"username": cluster.username, "password": server.password}
            secret_arn = database_secret_arn(app.region, cluster.identifier)
            database_links[cluster.arn] = {
                "host": "127.0.0.1", "port": port, "secretArn": secret_arn,
                "url": f"{server.url}?sslmode=require",
            }
            for endpoint in (cluster.endpoint, cluster.reader_endpoint, *cluster.proxy_endpoints):
                replacements[endpoint] = "127.0.0.1"

        provision(aws, app, self.store.secrets(), databases)
        data = self.store.path / "aws"
        for note in restore_data(aws, app, data):
            self.log.write(note)
        # Registered before the functions and servers, so it runs after they stopped writing.
        self._stoppers.append(("saving data", lambda: save_data(aws, app, data)))

        for api, port in api_ports:
            replacements[api.endpoint] = f"http://127.0.0.1:{port}"
        self.links = self._local_links(app.all_links(), replacements, database_links)

        environment = {**base_environment(), **aws.environment()}
        for spec in app.functions.values():
            if spec.image:
                # Without Docker and a Lambda runtime emulator the image itself cannot run here; a
                # Python handler in the folder it is built from runs as the zip functions do.
                source = spec.image_source
                if source is None or not (source / spec.module_file).is_file():
                    self.log.write(
                        f"{spec.label}: not served; a container-image function runs in infra dev only when "
                        f"its image is built from a folder holding its Python handler ({spec.handler or '?'}), "
                        "so its routes, subscriptions and schedules fail here"
                    )
                    continue
                self.log.write(f"{spec.label}: its container image's handler runs from {source} with this "
                               "environment's Python packages (the image's own are not installed here)")
                links = self._local_links(spec.links, replacements, database_links)
                host_env = self._function_environment(spec, links, replacements, environment)
                host_env["LAMBDA_TASK_ROOT"] = str(source)
                self.hosts[spec.name] = FunctionHost(spec, source, host_env, self.log, reload=True)
                continue
            if not spec.is_python or spec.archive is None:
                continue
            links = self._local_links(spec.links, replacements, database_links)
            host_env = self._function_environment(spec, links, replacements, environment)
            archives = self.store.path / "archives"
            source, reload = find_source(self.program_dir, spec, archives)
            host_env["LAMBDA_TASK_ROOT"] = str(source)
            # What the archive packages besides the sources (its requirements, shared helpers)
            # is found after this environment's own packages, which match this machine.
            host_env["HARBOR_DEV_FALLBACK_PATH"] = str(unpack(spec.archive, archives))
            self.hosts[spec.name] = FunctionHost(spec, source, host_env, self.log, reload=reload)
        self._stoppers.append(("functions", self._stop_hosts))

        for index, (api, port) in enumerate(api_ports):
            server = ApiServer(api, port, self.hosts.get, self.log)
            server.start()
            self._stoppers.append((api.label, server.stop))
            self.lines.insert(index, (server.name, server.url))  # the APIs first

        for mapping in app.mappings:
            if not mapping.get("enabled", True):
                continue
            function = app.function_by_arn(mapping["functionName"])
            host = self.hosts.get(function.name)
            if host is None:
                continue  # Node.js functions of a site: next dev stands in for them
            if mapping.get("eventSourceArn", "").startswith("arn:aws:sqs:"):
                poller = QueuePoller(
                    aws, app.queue_by_arn(mapping["eventSourceArn"]), host, int(mapping.get("batchSize") or 10),
                    "ReportBatchItemFailures" in (mapping.get("functionResponseTypes") or []), self.log,
                )
                poller.start()
                self._stoppers.append((poller.label, poller.stop))
            elif ":table/" in mapping.get("eventSourceArn", ""):
                streamer = StreamPoller(aws, mapping, host, self.log)
                streamer.start()
                self._stoppers.append((streamer.table, streamer.stop))
            else:
                source = mapping.get("eventSourceArn")
                self.log.write(f"{function.label}: its event source {source} does not run locally")
        jobs = [(job, host) for job in jobs_from_plan(app.plan.resources, app.region)
                if (host := self.hosts.get(app.function_by_arn(job.function).name)) is not None]
        scheduler = Scheduler(jobs, self.log)
        scheduler.start()
        self._stoppers.append(("schedules", scheduler.stop))
        self.scheduler = scheduler
        desk = ControlDesk(self.store, scheduler, self.log)  # infra fire, from another terminal
        desk.start()
        self._stoppers.append(("requests", desk.stop))
        for subscription in app.subscriptions:
            if subscription.get("protocol") != "lambda":
                continue
            host = self.hosts.get(app.function_by_arn(subscription["endpoint"]).name)
            if host is not None:
                subscriber = TopicSubscriber(aws, subscription, host, self.log)
                subscriber.start()
                self._stoppers.append((subscriber.label, subscriber.stop))

        for site in app.sites:
            if site not in sites:
                where = site.path or "<site>"
                self.lines.append((site.label.lower(), f"skipped: no {where}/node_modules (npm ci --prefix {where})"))
        for site, port in site_ports:
            server_spec = app.functions.get(site.server or "")
            links = self._local_links(server_spec.links if server_spec else {}, replacements, database_links)
            site_env = self._function_environment(server_spec, links, replacements, environment) if server_spec else (
                dict(environment))
            runner = NextDev(site.label, self.program_dir / site.path, port, site_env, self.log)  # type: ignore[operator]
            runner.start()
            self._stoppers.append((site.label, runner.stop))
            self.lines.append((site.label.lower(), runner.url))

        self.lines.append(("aws", aws.url))
        self.store.write_state(
            {"pid": os.getpid(), "stage": self.stage, "app": {"name": app.project, "stage": app.stage},
             "aws": aws.url, "region": app.region, "links": self.links,
             "services": dict(self.lines)}
        )
        self._stoppers.append(("state", self.store.clear_state))

    def _local_links(
        self, links: dict[str, Any], replacements: dict[str, str], databases: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        local = {}
        for name, entry in links.items():
            entry = dict(entry)
            if entry.get("type") == "sst.aws.Postgres" and entry.get("clusterArn") in databases:
                entry.update(databases[entry["clusterArn"]])
            local[name] = rewrite(entry, replacements)
        return local

    def _function_environment(
        self, spec: FunctionSpec, links: dict[str, Any], replacements: dict[str, str], base: dict[str, str]
    ) -> dict[str, str]:
        folder = self.store.folder("functions", spec.name)
        bundle = encode_links(links, app=self.app.project, stage=self.app.stage, key_file=str(folder / "resource.enc"))
        (folder / "resource.enc").write_bytes(bundle.file_bytes)
        own = {k: v for k, v in spec.environment.items() if not k.startswith("SST_")}
        return {
            **base,
            **rewrite(own, replacements),
            **bundle.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "HARBOR_DEV_FUNCTION_ARN": spec.arn,
        }

    # -- stop ------------------------------------------------------------------------------------
    def _stop_hosts(self) -> None:
        for host in self.hosts.values():
            host.stop()

    def stop(self) -> None:
        """Stop everything started, newest first; a failing stop does not keep the others running."""
        while self._stoppers:
            name, stop = self._stoppers.pop()
            try:
                stop()
            except Exception as error:
                self.log.write(f"stopping {name} failed: {error}")


def run_dev(program_dir: Path, stage: str, port: int = DEFAULT_PORT, reset: bool = False) -> int:
    """The ``infra dev`` command: run until SIGINT or SIGTERM."""
    session = DevSession(program_dir, stage, port)
    if reset:
        if session.store.read_state() is not None:
            raise DevError(f"infra dev is running for stage {stage!r}; stop it before --reset")
        session.store.reset()
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        session.start()
        if not stopping.is_set():
            for name, url in session.lines:
                session.log.service(name, url)
            session.log.write("ready")
            while not stopping.wait(0.5):
                pass
        session.log.write("stopping")
    finally:
        session.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def shell_environment(state: dict[str, Any]) -> dict[str, str]:
    """The link environment of a running ``infra dev``: SST_RESOURCE_* plus the AWS endpoint."""
    environment = {
        **base_environment(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": state["aws"],
        "AWS_REGION": state["region"],
        "AWS_DEFAULT_REGION": state["region"],
        "SST_RESOURCE_App": json.dumps(state["app"]),
    }
    for name, entry in state["links"].items():
        environment[f"SST_RESOURCE_{name}"] = json.dumps(entry)
    return environment
