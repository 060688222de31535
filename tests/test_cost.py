"""infra cost: monthly estimates from the plan and the price table, idle and under load."""

from __future__ import annotations

import re

import pytest

from infra.cli import main
from infra.cost import Load, component_of, estimate_plan, load_prices
from infra.rules import Resource

PRICES = load_prices()
HOURS = PRICES["hours_per_month"]
SEED_002_PER_STAGE = 55.0


def _cluster(min_acu: float, max_acu: float = 4, pause: int | None = None) -> list[Resource]:
    scaling: dict[str, float] = {"minCapacity": min_acu, "maxCapacity": max_acu}
    if pause is not None:
        scaling["secondsUntilAutoPause"] = pause
    return [
        Resource("aws:rds/cluster:Cluster", "db", {"clusterIdentifier": "harbor-prod-db",
                                                    "serverlessv2ScalingConfiguration": scaling}),
        Resource("aws:rds/clusterInstance:ClusterInstance", "db-writer",
                 {"clusterIdentifier": "harbor-prod-db", "instanceClass": "db.serverless"}),
    ]


def _nat_instances(count: int) -> list[Resource]:
    resources = []
    for index in range(count):
        resources.append(Resource("aws:ec2/instance:Instance", f"nat-{index}", {"instanceType": "t4g.nano"}))
        resources.append(Resource("aws:ec2/eip:Eip", f"nat-eip-{index}", {"domain": "vpc"}))
    return resources


def test_aurora_at_half_an_acu_costs_what_seed_002_says() -> None:
    estimate = estimate_plan(_cluster(0.5), PRICES)
    assert estimate.total_idle == pytest.approx(0.5 * HOURS * 0.12)  # $43.80, seed 002's "~$43"


def test_a_pausing_database_costs_nothing_idle_but_wakes_under_load() -> None:
    resources = _cluster(0, 2, pause=300)
    assert estimate_plan(resources, PRICES).total_idle == 0
    busy = estimate_plan(resources, PRICES, Load(requests=1_000_000, gb_stored=10))
    assert busy.total_load > 10 * PRICES["prices"]["aurora_storage_gb_month"]


def test_every_serverless_instance_pays_for_its_acus() -> None:
    resources = [*_cluster(1), Resource("aws:rds/clusterInstance:ClusterInstance", "db-reader",
                                        {"clusterIdentifier": "harbor-prod-db"})]
    assert estimate_plan(resources, PRICES).total_idle == pytest.approx(2 * HOURS * 0.12)


def test_nat_instances_are_priced_with_their_public_ipv4_and_disk() -> None:
    estimate = estimate_plan(_nat_instances(2), PRICES)
    services = estimate.by_service()
    assert services["EC2 (NAT)"][0] == pytest.approx(2 * 0.0042 * HOURS)
    assert services["Public IPv4"][0] == pytest.approx(2 * 0.005 * HOURS)
    assert services["EBS"][0] == pytest.approx(2 * 8 * 0.08)


def test_nat_gateways_cost_hours_and_processed_gigabytes() -> None:
    gateway = [Resource("aws:ec2/natGateway:NatGateway", "nat", {}), Resource("aws:ec2/eip:Eip", "nat-ip", {})]
    idle = estimate_plan(gateway, PRICES)
    assert idle.by_service()["NAT gateway"][0] == pytest.approx(0.045 * HOURS)
    busy = estimate_plan(gateway, PRICES, Load(gb_transfer=1000))
    assert busy.by_service()["NAT gateway"][1] == pytest.approx(0.045 * HOURS + 100 * 0.045)


def test_an_instance_type_without_a_price_is_an_error_naming_the_fix() -> None:
    with pytest.raises(SystemExit, match=re.escape("no price for EC2 m7g.large; add it to prices.json")):
        estimate_plan([Resource("aws:ec2/instance:Instance", "big", {"instanceType": "m7g.large"})], PRICES)


def test_requests_flow_through_the_api_to_lambda_and_dynamodb() -> None:
    resources = [
        Resource("aws:apigatewayv2/api:Api", "api", {"protocolType": "HTTP"}),
        Resource("aws:lambda/function:Function", "fn", {"memorySize": 1024, "architectures": ["arm64"]}),
        Resource("aws:dynamodb/table:Table", "table", {}),
    ]
    estimate = estimate_plan(resources, PRICES, Load(requests=1_000_000))
    services = estimate.by_service()
    assert estimate.total_idle == 0
    assert services["API Gateway"][1] == pytest.approx(1.00)
    assert services["Lambda"][1] == pytest.approx(0.20 + 1_000_000 * 0.1 * 1.0 * 0.0000133334)
    assert services["DynamoDB"][1] == pytest.approx(2 * 0.125 + 0.5 * 0.625)


def test_point_in_time_recovery_storage_is_priced_per_stored_gigabyte() -> None:
    # us-east-1 on-demand: table storage $0.25 and continuous backups (PITR) $0.20 per GB-month
    # (https://aws.amazon.com/dynamodb/pricing/on-demand/), written out here, not read from prices.json.
    def dynamo_cost(pitr: bool | None) -> float:
        inputs = {} if pitr is None else {"pointInTimeRecovery": {"enabled": pitr}}
        estimate = estimate_plan([Resource("aws:dynamodb/table:Table", "table", inputs)], PRICES,
                                 Load(gb_stored=40))
        return estimate.by_service()["DynamoDB"][1]

    assert dynamo_cost(None) == pytest.approx(40 * 0.25)
    assert dynamo_cost(False) == pytest.approx(40 * 0.25)
    assert dynamo_cost(True) == pytest.approx(40 * (0.25 + 0.20))


def test_traffic_leaves_through_cloudfront_when_there_is_one() -> None:
    resources = [
        Resource("aws:cloudfront/distribution:Distribution", "web", {}),
        Resource("aws:apigatewayv2/api:Api", "api", {"protocolType": "HTTP"}),
    ]
    estimate = estimate_plan(resources, PRICES, Load(requests=2_000_000, gb_transfer=100))
    services = estimate.by_service()
    assert services["CloudFront"][1] == pytest.approx(1.00 + 100 * 0.085)
    assert services["API Gateway"][1] == pytest.approx(1.00)


def test_fixed_monthly_charges_count_when_idle() -> None:
    resources = [
        Resource("aws:kms/key:Key", "key", {}),
        Resource("aws:secretsmanager/secret:Secret", "secret", {}),
        Resource("aws:ssm/parameter:Parameter", "standard", {"type": "SecureString"}),
        Resource("aws:ssm/parameter:Parameter", "advanced", {"type": "SecureString", "tier": "Advanced"}),
        Resource("aws:route53/zone:Zone", "zone", {}),
    ]
    assert estimate_plan(resources, PRICES).total_idle == pytest.approx(1.00 + 0.40 + 0.05 + 0.50)


def test_load_cost_grows_linearly_with_requests() -> None:
    resources = [
        Resource("aws:apigatewayv2/api:Api", "api", {"protocolType": "HTTP"}),
        Resource("aws:lambda/function:Function", "fn", {"memorySize": 512}),
        Resource("aws:sqs/queue:Queue", "jobs", {"fifoQueue": True}),
        Resource("aws:sns/topic:Topic", "events", {}),
        Resource("aws:s3/bucket:Bucket", "files", {}),
    ]
    one = estimate_plan(resources, PRICES, Load(requests=1e6)).total_load
    ten = estimate_plan(resources, PRICES, Load(requests=1e7)).total_load
    assert ten == pytest.approx(10 * one)


def test_costs_are_grouped_by_top_level_component() -> None:
    stack = Resource("pulumi:pulumi:Stack", "harbor-dev", urn="urn:pulumi:dev::harbor::pulumi:pulumi:Stack::harbor-dev")
    vpc = Resource("harbor:aws:Vpc", "Vpc", urn="urn:vpc", parent=stack.urn)
    nat = Resource("aws:ec2/instance:Instance", "Vpc-nat", {"instanceType": "t4g.nano"}, urn="urn:nat", parent=vpc.urn)
    by_urn = {r.urn: r for r in (stack, vpc, nat)}
    assert component_of(nat, by_urn) == "Vpc (harbor:aws:Vpc)"
    assert list(estimate_plan([stack, vpc, nat], PRICES).by_component()) == ["Vpc (harbor:aws:Vpc)"]


def test_dev_idles_well_under_seed_002s_55_dollars_and_prod_matches_its_table(plan_stage) -> None:
    dev = estimate_plan(plan_stage("dev").resources, PRICES, stage="dev")
    prod = estimate_plan(plan_stage("prod").resources, PRICES, stage="prod")
    assert dev.total_idle < SEED_002_PER_STAGE / 3
    assert prod.by_service()["Aurora"][0] == pytest.approx(43.80)
    assert dev.total_idle < prod.total_idle


@pytest.mark.usefixtures("cli_plans")
def test_the_command_prints_the_price_source_and_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--stage", "dev", "--requests", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "https://aws.amazon.com/rds/aurora/pricing/" in out
    assert PRICES["date"] in out
    assert "TOTAL" in out


def test_negative_load_is_refused() -> None:
    with pytest.raises(SystemExit, match="--gb-stored must be 0 or more"):
        main(["cost", "--stage", "dev", "--gb-stored", "-1"])


def test_flow_logs_and_database_log_exports_are_priced_idle_and_under_load() -> None:
    resources = [*_cluster(0.5), Resource("aws:ec2/flowLog:FlowLog", "flow", {
        "logDestinationType": "cloud-watch-logs", "trafficType": "ALL"})]
    resources[0].inputs["enabledCloudwatchLogsExports"] = ["postgresql"]
    assumptions, prices = PRICES["assumptions"], PRICES["prices"]
    logs = [i for i in estimate_plan(resources, PRICES, Load(requests=2e6)).items if i.service == "CloudWatch Logs"]
    (flow,) = [i for i in logs if i.detail.startswith("VPC flow logs")]
    (database,) = [i for i in logs if i.detail.startswith("database logs (postgresql)")]
    per_gb = prices["logs_vended_ingest_gb"] + prices["logs_storage_gb_month"]
    assert flow.idle == pytest.approx(assumptions["flow_log_idle_gb_month"] * per_gb)
    assert flow.load == pytest.approx(
        (assumptions["flow_log_idle_gb_month"] + 2 * assumptions["flow_log_gb_per_million_requests"]) * per_gb)
    assert database.idle > 0 and database.load > database.idle


@pytest.mark.usefixtures("cli_plans")
def test_prod_shows_its_flow_logs_in_the_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--stage", "prod", "--items"]) == 0
    assert "VPC flow logs" in capsys.readouterr().out
    assert main(["cost", "--stage", "dev", "--items"]) == 0
    assert "VPC flow logs" not in capsys.readouterr().out
