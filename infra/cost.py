"""``infra cost``: a monthly estimate per component, idle and under load, from a stage's plan.

    infra cost --stage dev
    infra cost --stage prod --requests 10000000 --gb-transfer 200 --gb-stored 50
    infra cost --stage prod --json

Prices are us-east-1 list prices from ``infra/prices.json`` (its sources and date are
printed with every estimate). *Idle* is what the stage costs with no traffic and no data:
database capacity that never scales to zero, NAT instances or gateways and their public
IPv4 addresses, KMS keys, secrets, hosted zones. *At load* adds the traffic given on the
command line, spread by the assumptions in the same file (one Lambda invocation of 100 ms
per request, requests split evenly across the HTTP APIs and CloudFront distributions,
stored GB split evenly across buckets, tables and databases, and so on).

Example::

    plan = run_program(ROOT, "dev")
    estimate = estimate_plan(plan.resources, load_prices(), Load(requests=1_000_000))
    estimate.total_idle  # dollars per month
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.rules import ResourceLike, as_list, get, truthy

PRICES_FILE = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class Load:
    """Monthly traffic to price: requests to the front doors, GB sent out, GB stored."""

    requests: float = 0
    gb_transfer: float = 0
    gb_stored: float = 0


@dataclass
class LineItem:
    """One priced quantity of one resource, at idle and at load (dollars per month)."""

    component: str
    service: str
    detail: str
    idle: float
    load: float


@dataclass
class Estimate:
    """Every line item, with totals per component and overall."""

    stage: str
    load: Load
    items: list[LineItem] = field(default_factory=list)

    @property
    def total_idle(self) -> float:
        return sum(i.idle for i in self.items)

    @property
    def total_load(self) -> float:
        return sum(i.load for i in self.items)

    def by_component(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, tuple[float, float]] = {}
        for item in self.items:
            idle, load = totals.get(item.component, (0.0, 0.0))
            totals[item.component] = (idle + item.idle, load + item.load)
        return totals

    def by_service(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, tuple[float, float]] = {}
        for item in self.items:
            idle, load = totals.get(item.service, (0.0, 0.0))
            totals[item.service] = (idle + item.idle, load + item.load)
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "load": vars(self.load),
            "totalIdle": round(self.total_idle, 2),
            "totalLoad": round(self.total_load, 2),
            "components": {k: {"idle": round(i, 2), "load": round(v, 2)} for k, (i, v) in self.by_component().items()},
            "items": [vars(item) | {"idle": round(item.idle, 4), "load": round(item.load, 4)} for item in self.items],
        }


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def component_of(resource: ResourceLike, by_urn: Mapping[str, ResourceLike]) -> str:
    """The top-level component a resource belongs to (``Database (harbor:aws:Postgres)``)."""
    current = resource
    seen: set[str] = set()
    while current.parent and current.parent in by_urn and current.urn not in seen:
        seen.add(current.urn)
        parent = by_urn[current.parent]
        if parent.type == "pulumi:pulumi:Stack":
            break
        current = parent
    return current.name if current is resource else f"{current.name} ({current.type})"


class _Pricer:
    """Turns resources into line items; one method per priced AWS service."""

    def __init__(self, resources: Sequence[ResourceLike], prices: Mapping[str, Any], load: Load, stage: str) -> None:
        self.resources = [r for r in resources if not r.type.startswith("pulumi:")]
        self.by_urn = {r.urn: r for r in resources}
        self.p = prices["prices"]
        self.a = prices["assumptions"]
        self.hours = float(prices["hours_per_month"])
        self.load = load
        self.estimate = Estimate(stage=stage, load=load)

    def of_type(self, *types: str) -> list[ResourceLike]:
        return [r for r in self.resources if r.type in types]

    def add(self, resource: ResourceLike, service: str, detail: str, idle: float, load: float | None = None) -> None:
        self.estimate.items.append(
            LineItem(component_of(resource, self.by_urn), service, detail, idle, idle if load is None else load)
        )

    # -- traffic split -------------------------------------------------------------------
    def front_doors(self) -> list[ResourceLike]:
        apis = [a for a in self.of_type("aws:apigatewayv2/api:Api") if a.inputs.get("protocolType", "HTTP") == "HTTP"]
        return apis + self.of_type("aws:apigateway/restApi:RestApi", "aws:cloudfront/distribution:Distribution")

    def stores(self) -> list[ResourceLike]:
        return self.of_type("aws:s3/bucket:Bucket", "aws:dynamodb/table:Table", "aws:rds/cluster:Cluster")

    def share(self, total: float, among: Sequence[Any]) -> float:
        return total / len(among) if among else 0.0

    # -- services ------------------------------------------------------------------------
    def aurora(self) -> None:
        stores = self.stores()
        for cluster in self.of_type("aws:rds/cluster:Cluster"):
            scaling = cluster.inputs.get("serverlessv2ScalingConfiguration") or {}
            instances = [
                i for i in self.of_type("aws:rds/clusterInstance:ClusterInstance")
                if i.inputs.get("clusterIdentifier") == cluster.inputs.get("clusterIdentifier")
            ] or [cluster]
            low = float(scaling.get("minCapacity") or 0)
            high = float(scaling.get("maxCapacity") or max(low, 1))
            pauses = low == 0 and scaling.get("secondsUntilAutoPause") is not None
            if not self.load.requests:
                busy, awake_share = (0.0, 0.0) if pauses else (low, 1.0)
            else:
                # Traffic wakes a pausing cluster for part of the month (assumption in prices.json).
                awake_share = self.a["aurora_pausing_awake_share_at_load"] if pauses else 1.0
                extra = self.a["aurora_acu_per_million_requests"] * self.load.requests / 1e6
                busy = min(high, max(low, self.a["aurora_awake_min_acu"]) + extra)
            acu_price = self.p["aurora_acu_hour"] * self.hours * len(instances)
            pause_note = f", pauses when idle (awake {awake_share:.0%} at load)" if pauses else ""
            self.add(cluster, "Aurora", f"{len(instances)} instance(s), {low:g}-{high:g} ACU{pause_note}; "
                     f"at load {busy:g} ACU",
                     (0.0 if pauses else low) * acu_price, busy * awake_share * acu_price)
            stored = self.share(self.load.gb_stored, stores)
            io = self.load.requests * self.a["aurora_io_per_request"] / 1e6 * self.p["aurora_io_per_million"]
            self.add(cluster, "Aurora", f"storage {stored:g} GB, I/O", 0.0,
                     stored * self.p["aurora_storage_gb_month"] + io)
            if truthy(cluster.inputs.get("manageMasterUserPassword")):
                self.add(cluster, "Secrets Manager", "RDS-managed master password",
                         self.p["secretsmanager_secret_month"])

    def nat(self) -> None:
        for instance in self.of_type("aws:ec2/instance:Instance"):
            kind = instance.inputs.get("instanceType") or "t4g.nano"
            hourly = self.p["ec2_instance_hour"].get(kind)
            if hourly is None:
                raise SystemExit(f"infra cost: no price for EC2 {kind}; add it to {PRICES_FILE.name}")
            size = get(instance.inputs, "rootBlockDevice", "volumeSize") or self.p["ebs_default_root_gb"]
            self.add(instance, "EC2 (NAT)", f"{kind} x {self.hours:g} h", hourly * self.hours)
            self.add(instance, "EBS", f"{size:g} GB gp3 root volume", float(size) * self.p["ebs_gp3_gb_month"])
            if truthy(instance.inputs.get("associatePublicIpAddress")):
                self.add(instance, "Public IPv4", "1 address", self.p["public_ipv4_hour"] * self.hours)
        for eip in self.of_type("aws:ec2/eip:Eip"):
            self.add(eip, "Public IPv4", "1 elastic IP", self.p["public_ipv4_hour"] * self.hours)
        gateways = self.of_type("aws:ec2/natGateway:NatGateway")
        for gateway in gateways:
            through = self.share(self.load.gb_transfer * self.a["nat_gb_share_of_transfer"], gateways)
            hourly = self.p["nat_gateway_hour"] * self.hours
            self.add(gateway, "NAT gateway", f"{self.hours:g} h + {through:g} GB processed", hourly,
                     hourly + through * self.p["nat_gateway_gb"])
        for endpoint in self.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
            if endpoint.inputs.get("vpcEndpointType") == "Interface":
                zones = max(1, len(as_list(endpoint.inputs.get("subnetIds"))))
                self.add(endpoint, "VPC endpoint", f"interface endpoint in {zones} AZ(s)",
                         zones * self.p["vpc_interface_endpoint_hour"] * self.hours)

    def lambda_(self) -> None:
        functions = self.of_type("aws:lambda/function:Function")
        invocations = self.share(self.load.requests * self.a["lambda_invocations_per_request"], functions)
        for function in functions:
            memory = float(function.inputs.get("memorySize") or self.a["lambda_default_memory_mb"])
            arch = (as_list(function.inputs.get("architectures")) or ["x86_64"])[0]
            gb_seconds = invocations * self.a["lambda_average_duration_ms"] / 1000 * memory / 1024
            cost = invocations / 1e6 * self.p["lambda_requests_per_million"]
            cost += gb_seconds * self.p["lambda_gb_second"].get(arch, self.p["lambda_gb_second"]["x86_64"])
            logs_gb = invocations * self.a["log_kb_per_invocation"] / 1024 / 1024
            self.add(function, "Lambda", f"{invocations:,.0f} invocations, {memory:g} MB {arch}", 0.0, cost)
            self.add(function, "CloudWatch Logs", f"{logs_gb:.2f} GB ingested", 0.0,
                     logs_gb * (self.p["logs_ingest_gb"] + self.p["logs_storage_gb_month"]))

    def front(self) -> None:
        doors = self.front_doors()
        requests = self.share(self.load.requests, doors)
        distributions = self.of_type("aws:cloudfront/distribution:Distribution")
        for door in doors:
            if door.type == "aws:cloudfront/distribution:Distribution":
                gb = self.share(self.load.gb_transfer, distributions)
                cost = requests / 1e6 * self.p["cloudfront_https_per_million"] + gb * self.p["cloudfront_gb"]
                self.add(door, "CloudFront", f"{requests:,.0f} HTTPS requests, {gb:g} GB out", 0.0, cost)
            else:
                per_million = self.p["apigateway_http_per_million"]
                if door.type == "aws:apigateway/restApi:RestApi":
                    per_million = self.p["apigateway_rest_per_million"]
                gb = 0.0 if distributions else self.share(self.load.gb_transfer, doors)
                cost = requests / 1e6 * per_million + gb * self.p["internet_egress_gb"]
                self.add(door, "API Gateway", f"{requests:,.0f} requests, {gb:g} GB out", 0.0, cost)

    def storage(self) -> None:
        stores = self.stores()
        stored = self.share(self.load.gb_stored, stores)
        buckets = self.of_type("aws:s3/bucket:Bucket")
        for bucket in buckets:
            gets = self.share(self.load.requests * self.a["s3_gets_per_request"], buckets)
            puts = self.share(self.load.requests * self.a["s3_puts_per_request"], buckets)
            cost = stored * self.p["s3_standard_gb_month"] + gets / 1000 * self.p["s3_get_per_thousand"]
            cost += puts / 1000 * self.p["s3_put_per_thousand"]
            self.add(bucket, "S3", f"{stored:g} GB standard, {gets + puts:,.0f} requests", 0.0, cost)
        tables = self.of_type("aws:dynamodb/table:Table")
        for table in tables:
            reads = self.share(self.load.requests * self.a["dynamodb_reads_per_request"], tables)
            writes = self.share(self.load.requests * self.a["dynamodb_writes_per_request"], tables)
            per_gb = self.p["dynamodb_storage_gb_month"]
            if truthy(get(table.inputs, "pointInTimeRecovery", "enabled")):
                per_gb += self.p["dynamodb_pitr_gb_month"]
            cost = reads / 1e6 * self.p["dynamodb_read_per_million"]
            cost += writes / 1e6 * self.p["dynamodb_write_per_million"]
            self.add(table, "DynamoDB", f"on-demand, {stored:g} GB, {reads + writes:,.0f} request units", 0.0,
                     cost + stored * per_gb)

    def messaging(self) -> None:
        queues = self.of_type("aws:sqs/queue:Queue")
        consumed = [q for q in queues if not str(q.name).lower().endswith(("dlq", "deadletter", "dead_letter"))]
        for queue in consumed:
            messages = self.share(self.load.requests * self.a["queue_messages_per_request"], consumed)
            fifo = truthy(queue.inputs.get("fifoQueue"))
            per_million = self.p["sqs_fifo_per_million" if fifo else "sqs_standard_per_million"]
            calls = messages * self.a["sqs_requests_per_message"]
            self.add(queue, "SQS", f"{messages:,.0f} messages ({'FIFO' if fifo else 'standard'})", 0.0,
                     calls / 1e6 * per_million)
        topics = self.of_type("aws:sns/topic:Topic")
        for topic in topics:
            publishes = self.share(self.load.requests * self.a["topic_publishes_per_request"], topics)
            fifo = truthy(topic.inputs.get("fifoTopic"))
            per_million = self.p["sns_fifo_publish_per_million" if fifo else "sns_standard_publish_per_million"]
            self.add(topic, "SNS", f"{publishes:,.0f} publishes", 0.0, publishes / 1e6 * per_million)

    def logs(self) -> None:
        """Logs that flow without any request of ours: VPC flow logs and database log exports.

        Flow records are vended logs (their own CloudWatch ingestion price); both keep the
        stage's retention, stored for about a month on average (assumptions in prices.json).
        """
        stored = self.p["logs_storage_gb_month"]
        for flow in self.of_type("aws:ec2/flowLog:FlowLog"):
            if flow.inputs.get("logDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
                continue
            idle_gb = self.a["flow_log_idle_gb_month"]
            load_gb = idle_gb + self.load.requests / 1e6 * self.a["flow_log_gb_per_million_requests"]
            per_gb = self.p["logs_vended_ingest_gb"] + stored
            self.add(flow, "CloudWatch Logs", f"VPC flow logs, {idle_gb:g} GB idle, {load_gb:.2f} GB at load",
                     idle_gb * per_gb, load_gb * per_gb)
        for cluster in self.of_type("aws:rds/cluster:Cluster"):
            exports = as_list(cluster.inputs.get("enabledCloudwatchLogsExports"))
            if not exports:
                continue
            idle_gb = self.a["database_log_idle_gb_month"]
            load_gb = idle_gb + self.load.requests / 1e6 * self.a["database_log_gb_per_million_requests"]
            per_gb = self.p["logs_ingest_gb"] + stored
            self.add(cluster, "CloudWatch Logs", f"database logs ({', '.join(exports)}), {load_gb:.2f} GB at load",
                     idle_gb * per_gb, load_gb * per_gb)

    def fixed(self) -> None:
        for secret in self.of_type("aws:secretsmanager/secret:Secret"):
            self.add(secret, "Secrets Manager", "1 secret", self.p["secretsmanager_secret_month"])
        for parameter in self.of_type("aws:ssm/parameter:Parameter"):
            if parameter.inputs.get("tier") in ("Advanced", "Intelligent-Tiering"):
                self.add(parameter, "SSM", "advanced parameter", self.p["ssm_advanced_parameter_month"])
        for key in self.of_type("aws:kms/key:Key"):
            self.add(key, "KMS", "1 customer key", self.p["kms_key_month"])
        for zone in self.of_type("aws:route53/zone:Zone"):
            self.add(zone, "Route 53", "1 hosted zone", self.p["route53_zone_month"])

    def run(self) -> Estimate:
        for step in (self.aurora, self.nat, self.lambda_, self.front, self.storage, self.messaging, self.logs,
                     self.fixed):
            step()
        return self.estimate


def estimate_plan(
    resources: Sequence[ResourceLike], prices: Mapping[str, Any], load: Load = Load(), stage: str = ""
) -> Estimate:
    """The monthly estimate of a stage's resources."""
    return _Pricer(resources, prices, load, stage).run()


def render(estimate: Estimate, prices: Mapping[str, Any], show_items: bool = False) -> str:
    """The estimate as a table: one row per component, then per service, then the total."""
    load = estimate.load
    lines = [
        f"infra cost · stage {estimate.stage} · USD per month, {prices['region']} list prices "
        f"of {prices['date']}",
        f"load: {load.requests:,.0f} requests, {load.gb_transfer:g} GB out, {load.gb_stored:g} GB stored",
        "",
        f"{'component':44} {'idle':>10} {'at load':>10}",
    ]
    for name, (idle, at_load) in sorted(estimate.by_component().items(), key=lambda kv: -kv[1][1]):
        lines.append(f"{name[:44]:44} {idle:10.2f} {at_load:10.2f}")
        if show_items:
            for item in estimate.items:
                if item.component == name:
                    lines.append(f"    {item.service}: {item.detail}  ({item.idle:.2f} / {item.load:.2f})")
    lines.append("")
    lines.append(f"{'by service':44} {'idle':>10} {'at load':>10}")
    for service, (idle, at_load) in sorted(estimate.by_service().items(), key=lambda kv: -kv[1][1]):
        lines.append(f"{service:44} {idle:10.2f} {at_load:10.2f}")
    lines.append("")
    lines.append(f"{'TOTAL':44} {estimate.total_idle:10.2f} {estimate.total_load:10.2f}")
    lines.append("")
    lines.append(f"prices: infra/prices.json ({prices['date']}); {prices['note']}")
    lines.append("sources: " + ", ".join(sorted(set(prices["sources"].values()))))
    lines.append("assumptions: " + ", ".join(f"{k}={v}" for k, v in prices["assumptions"].items()))
    return "\n".join(lines)


def _parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="stage (stack) name: dev, staging, prod, alice…")
    parser.add_argument("--requests", type=float, default=0, help="requests per month to the APIs and sites")
    parser.add_argument("--gb-transfer", type=float, default=0, help="GB per month sent to users")
    parser.add_argument("--gb-stored", type=float, default=0, help="GB stored across buckets, tables, databases")
    parser.add_argument("--items", action="store_true", help="show each priced line under its component")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    parser.add_argument("--program", help="the program's folder (default: this project)")


def _run(args: argparse.Namespace) -> int:
    from infra.cli import resolve_program
    from infra.harness import run_program

    for flag in ("requests", "gb_transfer", "gb_stored"):
        if getattr(args, flag) < 0:
            raise SystemExit(f"infra cost: --{flag.replace('_', '-')} must be 0 or more")
    prices = load_prices()
    plan = run_program(resolve_program(args.program), args.stage)
    estimate = estimate_plan(plan.resources, prices, Load(args.requests, args.gb_transfer, args.gb_stored), args.stage)
    if args.json:
        print(json.dumps(estimate.to_json() | {"prices": {"date": prices["date"], "sources": prices["sources"]}},
                         indent=2))
    else:
        print(render(estimate, prices, args.items))
    return 0


def _register() -> None:
    from infra.cli import subcommand

    subcommand("cost", "estimate a stage's monthly AWS bill, idle and at a given load")((_parser, _run))


_register()
