"""The stage's plan, read as the list of things that run locally.

:func:`evaluate` runs the real program through :func:`infra.harness.run_program` (the
same run ``infra plan`` does), with the stage's secrets answered from the local store,
and reads the recorded resources: Lambda functions with their handler, archive and
link data, DynamoDB tables, buckets, queues, topics, subscriptions, event source
mappings, HTTP APIs with their routes, Postgres clusters and Next.js sites.

The plan masks secret inputs (``[secret]``); the recording mocks keep the values the
engine handed them, so a function whose links hold a secret still gets its link file.

Example::

    app = evaluate(Path("."), "alice", LocalStore.for_stage(Path("."), "alice"), print)
    [route.key for api in app.apis for route in api.routes]   # ['GET /items', ...]
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from components.aws.container import LINK_CONTEXT
from components.aws.secret import SecretsMissingError, secret_path
from components.core.context import LINKS_OUTPUT
from components.core.linking import KEY_FILE_NAME, SST_NONCE
from infra.dev.store import LocalStore
from infra.harness import Plan, PlannedResource, project_name, read_stage_file, run_program
from infra.mocks import AwsMocks, MockContext

FUNCTION = "aws:lambda/function:Function"
IMAGE = "docker-build:index:Image"
RANDOM_SECRET_NOTE = "no placeholder and no local value"


class DevError(pulumi.RunError):
    """Something ``infra dev`` cannot do; printed as one line, without a traceback."""


class RecordingMocks(AwsMocks):
    """The AWS mocks, also keeping each resource's full state and id (secrets unmasked)."""

    def __init__(self, context: MockContext) -> None:
        super().__init__(context)
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.ids: dict[tuple[str, str], str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        resource_id, state = super().new_resource(args)
        self.state[(args.typ, args.name)] = _unwrap_secrets(dict(state))
        self.ids[(args.typ, args.name)] = resource_id or ""
        return resource_id, state


def _unwrap_secrets(value: Any) -> Any:
    """Values as the engine would resolve them: Pulumi's secret envelopes opened."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


@dataclass
class FunctionSpec:
    """One Lambda function as it runs locally."""

    name: str  # physical name, harbor-alice-ApiPostItems
    label: str  # the harbor Function component's name, ApiPostItems
    handler: str  # as Lambda reads it: items.create
    runtime: str
    timeout: float
    memory: int
    archive: Path | None
    environment: dict[str, str]
    links: dict[str, Any]
    arn: str = ""
    image: str | None = None  # a container-image function's image URI
    image_source: Path | None = None  # the folder its image is built from, when it is one of ours

    @property
    def module_file(self) -> str:
        """The handler's module as a path inside its folder: ``items.create`` -> ``items.py``."""
        return self.handler.rpartition(".")[0].replace(".", "/") + ".py"

    @property
    def is_python(self) -> bool:
        return self.runtime.startswith("python")


@dataclass
class RouteSpec:
    key: str  # "GET /items/{id}" or "$default"
    function: str  # physical function name
    auth: str  # NONE, AWS_IAM, JWT, CUSTOM
    scopes: list[str] = field(default_factory=list)
    timeout: float = 30.0


@dataclass
class ApiSpec:
    label: str
    endpoint: str  # the deployed-looking endpoint the plan knows, replaced by the local URL
    cors: dict[str, Any] | None
    routes: list[RouteSpec]


@dataclass
class ClusterSpec:
    label: str
    identifier: str
    database: str
    username: str
    arn: str
    endpoint: str
    reader_endpoint: str
    proxy_endpoints: list[str]


@dataclass
class SiteSpec:
    label: str
    path: Path | None
    server: str | None  # physical name of its server function
    skipped: str | None = None


@dataclass
class DevApp:
    """What runs locally for one stage, read from its plan."""

    project: str
    stage: str
    region: str
    plan: Plan
    functions: dict[str, FunctionSpec]
    tables: list[dict[str, Any]]
    buckets: list[str]
    queues: list[dict[str, Any]]
    topics: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    mappings: list[dict[str, Any]]
    apis: list[ApiSpec]
    clusters: list[ClusterSpec]
    sites: list[SiteSpec]
    secret_names: list[str]

    def function_by_arn(self, arn: str) -> FunctionSpec:
        name = arn.rsplit(":", 1)[-1] if arn.startswith("arn:") else arn
        try:
            return self.functions[name]
        except KeyError:
            raise DevError(f"the plan has no function {name!r} (from {arn})") from None

    def queue_by_arn(self, arn: str) -> dict[str, Any]:
        for queue in self.queues:
            if queue["arn"] == arn:
                return queue
        raise DevError(f"the plan has no queue {arn}")

    def all_links(self) -> dict[str, Any]:
        """Every linkable resource of the stage by name, linked or not: the stage's link environment.

        The program exports them (the ``links`` stack output); a program without
        ``start_app`` has only what its functions link.
        """
        merged: dict[str, Any] = {}
        for function in self.functions.values():
            merged.update(function.links)
        exported = self.plan.revealed.get(LINKS_OUTPUT)
        if isinstance(exported, dict):
            merged.update(exported)
        return merged


def evaluate(program_dir: Path, stage: str, store: LocalStore, say: Callable[[str], None]) -> DevApp:
    """Run the program for ``stage`` and read what runs locally.

    Secrets come from the local store; a secret with neither a placeholder nor a local
    value gets a random local value, said once and kept in the store.
    """
    project = project_name(program_dir)
    settings = read_stage_file(program_dir, stage)
    region = settings.get(f"{project}:region") or settings.get("aws:region") or "us-east-1"
    for attempt in range(2):
        parameters = {secret_path(project, stage, name): value for name, value in store.secrets().items()}
        mocks = RecordingMocks(MockContext(region=region, parameters=parameters))
        try:
            plan = run_program(program_dir, stage, mocks=mocks)
        except SecretsMissingError as missing:
            if attempt:
                raise
            new = store.add_random_secrets(missing.missing)
            say(
                f"secrets {', '.join(sorted(new))}: {RANDOM_SECRET_NOTE}; random local values kept in "
                f"{store.secrets_file} (this machine only, never on a deployed stage)"
            )
            continue
        return read_app(plan, mocks, region, program_dir)
    raise AssertionError("unreachable")


def read_app(plan: Plan, mocks: RecordingMocks, region: str, program_dir: Path | None = None) -> DevApp:
    """The local view of a plan, with the unmasked state the mocks recorded."""

    def state(resource: PlannedResource) -> dict[str, Any]:
        return mocks.state.get((resource.type, resource.name), {})

    by_urn = {r.urn: r for r in plan.resources}

    def label(resource: PlannedResource) -> str:
        """The harbor component a resource belongs to (ApiPostItems for its Lambda function)."""
        parent = by_urn.get(resource.parent or "")
        if parent is None or parent.custom or parent.type == "pulumi:pulumi:Stack":
            return resource.name
        return parent.name

    # A container-image function's image is built beside it, under the same component.
    images = {r.parent: r.inputs for r in plan.resources if r.type == IMAGE}
    functions: dict[str, FunctionSpec] = {}
    for resource in plan.of_type(FUNCTION):
        spec = _function(resource, state(resource), label(resource))
        if spec.image and program_dir is not None:
            _read_image(spec, images.get(resource.parent) or {}, program_dir)
        functions[spec.name] = spec

    integrations = {
        mocks.ids[(r.type, r.name)]: state(r) for r in plan.of_type("aws:apigatewayv2/integration:Integration")
    }
    apis: list[ApiSpec] = []
    for resource in plan.of_type("aws:apigatewayv2/api:Api"):
        api_state = state(resource)
        api_id = mocks.ids[(resource.type, resource.name)]
        routes = []
        for route in plan.of_type("aws:apigatewayv2/route:Route"):
            route_state = state(route)
            if route_state.get("apiId") != api_id:
                continue
            integration = integrations.get(str(route_state.get("target", "")).removeprefix("integrations/"))
            if integration is None:
                continue
            function = integration["integrationUri"].rsplit(":", 1)[-1]
            routes.append(
                RouteSpec(
                    key=route_state["routeKey"],
                    function=function,
                    auth=str(route_state.get("authorizationType") or "NONE"),
                    scopes=list(route_state.get("authorizationScopes") or []),
                    timeout=float(integration.get("timeoutMilliseconds") or 30000) / 1000,
                )
            )
        apis.append(ApiSpec(label(resource), api_state["apiEndpoint"], api_state.get("corsConfiguration"), routes))

    proxies = [state(r) for r in plan.of_type("aws:rds/proxy:Proxy")]
    clusters = []
    for resource in plan.of_type("aws:rds/cluster:Cluster"):
        s = state(resource)
        clusters.append(
            ClusterSpec(
                label=label(resource),
                identifier=s["clusterIdentifier"],
                database=s.get("databaseName") or "postgres",
                username=s.get("masterUsername") or "postgres",
                arn=s["arn"],
                endpoint=s["endpoint"],
                reader_endpoint=s.get("readerEndpoint") or s["endpoint"],
                proxy_endpoints=[p["endpoint"] for p in proxies],
            )
        )

    sites = []
    for component in plan.of_type("harbor:aws:Nextjs"):
        inside = plan.descendants(component)
        # The site's folder is where its build's assets come from: <site>/.open-next/assets.
        directories = [
            str(source.get("directory", ""))
            for r in inside
            if isinstance(r.inputs.get("sources"), list)
            for source in r.inputs["sources"]
            if isinstance(source, dict)
        ]
        path = next((Path(d.split("/.open-next")[0]) for d in directories if "/.open-next" in d), None)
        servers = [
            state(r)["name"] for r in inside
            if r.type == FUNCTION and label(r) == f"{component.name}Server"
        ]
        skipped = None if servers else f"{component.name} was not built (see the warning above)"
        sites.append(SiteSpec(component.name, path, servers[0] if servers else None, skipped))

    return DevApp(
        project=plan.project,
        stage=plan.stage,
        region=region,
        plan=plan,
        functions=functions,
        tables=[state(r) for r in plan.of_type("aws:dynamodb/table:Table")],
        buckets=[state(r)["bucket"] for r in plan.of_type("aws:s3/bucket:Bucket")],
        queues=[state(r) for r in plan.of_type("aws:sqs/queue:Queue")],
        topics=[state(r) for r in plan.of_type("aws:sns/topic:Topic")],
        subscriptions=[state(r) for r in plan.of_type("aws:sns/topicSubscription:TopicSubscription")],
        mappings=[state(r) for r in plan.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")],
        apis=apis,
        clusters=clusters,
        sites=sites,
        secret_names=[r.name for r in plan.of_type("harbor:sst:Secret")],
    )


def _function(resource: PlannedResource, state: dict[str, Any], label: str) -> FunctionSpec:
    variables = dict(((state.get("environment") or {}).get("variables")) or {})
    code = state.get("code")
    archive = Path(code.path) if isinstance(code, pulumi.FileArchive) else None
    links = read_link_file(archive, variables.get("SST_KEY")) if archive is not None else {}
    commands = list((state.get("imageConfig") or {}).get("commands") or [])
    return FunctionSpec(
        name=state["name"],
        label=label,
        handler=state.get("handler") or (commands[0] if commands else ""),
        runtime=state.get("runtime", "python3.12"),
        timeout=float(state.get("timeout") or 3),
        memory=int(state.get("memorySize") or 128),
        archive=archive,
        environment={k: str(v) for k, v in variables.items()},
        links=links,
        arn=state.get("arn", ""),
        image=str(state.get("imageUri") or "") if state.get("packageType") == "Image" else None,
    )


def _read_image(spec: FunctionSpec, image: dict[str, Any], program_dir: Path) -> None:
    """Where an image function's handler and link file are, when its image is built from a folder."""
    context = image.get("context") if isinstance(image.get("context"), dict) else {}
    location = context.get("location")
    if not isinstance(location, str) or "://" in location:
        return
    spec.image_source = (program_dir / location).resolve()
    named = (context.get("named") or {}).get(LINK_CONTEXT) or {}
    folder = named.get("location") if isinstance(named, dict) else None
    key = spec.environment.get("SST_KEY")
    if isinstance(folder, str) and key:
        # The program writes it relative to the folder it runs from: the project's, or this one.
        for base in (program_dir, Path.cwd()):
            link_file = base / folder / KEY_FILE_NAME
            if link_file.is_file():
                from cryptography.hazmat.primitives.ciphers.aead import AESGCM

                decrypted = AESGCM(base64.b64decode(key)).decrypt(SST_NONCE, link_file.read_bytes(), None)
                spec.links = json.loads(decrypted)
                return


def read_link_file(archive: Path, key: str | None) -> dict[str, Any]:
    """The link data inside a function's archive, decrypted with its ``SST_KEY``."""
    if key is None or not archive.is_file():
        return {}
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as bundle:
        if KEY_FILE_NAME not in bundle.namelist():
            return {}
        encrypted = bundle.read(KEY_FILE_NAME)
    return json.loads(AESGCM(base64.b64decode(key)).decrypt(SST_NONCE, encrypted, None))
