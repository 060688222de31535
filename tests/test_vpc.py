"""Vpc: subnets per zone from the CIDR, NAT variants from the stage, endpoints, closed security groups."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pulumi
import pytest

from components import ComponentError, Vpc, start_app
from components.aws.vpc import FCK_NAT_OWNER
from components.core.linking import link_data, link_statements
from infra.harness import Plan, run_mocked
from infra.mocks import AwsMocks, short_id
from tests.conftest import APP, replacement_outcome, stage_config

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def mock_id(prefix: str, logical_name: str) -> str:
    """The id the AWS mocks give an EC2 resource (ids live in state, not in inputs)."""
    return f"{prefix}-{short_id(prefix, logical_name)}"


def subnets(plan: Plan, kind: str) -> list:
    """The subnets of one kind, in zone order (registration order is not deterministic)."""
    return sorted((r for r in plan.of_type(SUBNET) if r.name.startswith(f"Vpc-{kind}_subnet-")), key=lambda r: r.name)


def nat_routes(plan: Plan) -> list:
    return [r for r in plan.of_type(ROUTE) if r.name.startswith("Vpc-nat_route-")]


def test_prod_plan_has_a_public_and_private_subnet_in_each_zone_nat_instances_and_endpoints(plan_stage):
    plan = plan_stage("prod")
    vpc = plan.one("aws:ec2/vpc:Vpc").inputs
    assert vpc["cidrBlock"] == "10.0.0.0/16"
    assert vpc["enableDnsSupport"] is True and vpc["enableDnsHostnames"] is True
    for kind in ("public", "private"):
        assert sorted(s.inputs["availabilityZone"] for s in subnets(plan, kind)) == ["us-east-1a", "us-east-1b"]
    assert len(plan.of_type(INSTANCE)) == 2  # prod: natCount 2, EC2 NAT (seed 002)
    assert not plan.of_type("aws:ec2/natGateway:NatGateway")
    services = sorted(e.inputs["serviceName"] for e in plan.of_type(ENDPOINT))
    assert services == ["com.amazonaws.us-east-1.dynamodb", "com.amazonaws.us-east-1.s3"]
    assert plan.one("aws:ec2/internetGateway:InternetGateway")


def test_subnets_are_carved_from_the_cidr_and_do_not_overlap(build):
    plan = build(lambda: Vpc("Vpc", cidr="172.16.0.0/20"), azCount=3)
    cidrs = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in plan.of_type(SUBNET)]
    assert len(cidrs) == 6
    assert all(c.subnet_of(ipaddress.ip_network("172.16.0.0/20")) and c.prefixlen == 24 for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
    assert [s.inputs["cidrBlock"] for s in subnets(plan, "public")] == [
        "172.16.0.0/24", "172.16.1.0/24", "172.16.2.0/24"
    ]
    assert [s.inputs["cidrBlock"] for s in subnets(plan, "private")] == [
        "172.16.8.0/24", "172.16.9.0/24", "172.16.10.0/24"
    ]


def test_adding_a_zone_keeps_the_existing_subnet_ranges(build):
    two = build(lambda: Vpc("Vpc"), azCount=2, natCount=1)
    three = build(lambda: Vpc("Vpc"), azCount=3, natCount=1)
    before = {s.name: s.inputs["cidrBlock"] for s in two.of_type(SUBNET)}
    after = {s.name: s.inputs["cidrBlock"] for s in three.of_type(SUBNET)}
    assert before.items() <= after.items()


def test_no_subnet_gets_a_public_address_by_default(build):
    plan = build(lambda: Vpc("Vpc"))
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in plan.of_type(SUBNET))


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.0/25", r"too small for the subnets.*/29.*/28 minimum"),
        ("10.0.0.0/12", "larger than AWS allows"),
        ("8.8.0.0/16", "public address space"),
        ("10.0.0.1/16", "not an IPv4 network"),
    ],
)
def test_bad_cidr_is_a_clear_error(build, cidr, message):
    with pytest.raises(ComponentError, match=message):
        build(lambda: Vpc("Vpc", cidr=cidr))


def test_an_az_count_the_region_lacks_is_a_clear_error(build):
    # The mocked us-west-1, like the real one for most accounts, has two zones.
    with pytest.raises(ComponentError, match=r"azCount 3 asks for more zones than us-west-1 has \(2"):
        build(lambda: Vpc("Vpc"), region="us-west-1", azCount=3, natCount=1)


def test_zones_come_from_the_region_lookup(build):
    plan = build(lambda: Vpc("Vpc"), region="us-west-1", azCount=2, natCount=1)
    assert sorted(s.inputs["availabilityZone"] for s in subnets(plan, "private")) == ["us-west-1a", "us-west-1c"]


def test_explicit_zones_from_the_stage_are_used(build):
    plan = build(lambda: Vpc("Vpc"), azCount=2, natCount=1, availabilityZones=["us-east-1c", "us-east-1f"])
    assert [s.inputs["availabilityZone"] for s in subnets(plan, "public")] == ["us-east-1c", "us-east-1f"]


def test_explicit_zone_missing_from_the_region_is_a_clear_error(build):
    with pytest.raises(ComponentError, match=r"us-west-1b are not standard availability zones of us-west-1"):
        build(lambda: Vpc("Vpc"), region="us-west-1", azCount=2, natCount=1,
              availabilityZones=["us-west-1a", "us-west-1b"])


def test_nat_count_above_the_zone_count_is_a_clear_error(build):
    with pytest.raises(ComponentError, match="nat_count 3 is more than the 2 zones"):
        build(lambda: Vpc("Vpc", nat_count=3))


class RecordingMocks(AwsMocks):
    """Mocks that also keep every invoke, to check what the program looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append((args.token, dict(args.args)))
        return super().call(args)


def test_nat_instances_run_the_newest_arm64_fck_nat_ami_by_owner_and_name():
    mocks = RecordingMocks()
    run_mocked(lambda: (start_app(), Vpc("Vpc")), APP, "dev", stage_config("dev"), mocks=mocks)
    (lookup,) = [args for token, args in mocks.calls if token == "aws:ec2/getAmi:getAmi"]
    assert lookup["mostRecent"] is True
    assert lookup["owners"] == [FCK_NAT_OWNER] == ["568608671756"]
    filters = {f["name"]: f["values"] for f in lookup["filters"]}
    assert filters == {"name": ["fck-nat-al2023-*"], "architecture": ["arm64"]}


def test_a_new_ami_release_never_replaces_running_nat_instances(build):
    plan = build(lambda: Vpc("Vpc"), stage="prod", natCount=2)
    instances = plan.of_type(INSTANCE)
    assert len(instances) == 2
    assert all(i.ignore_changes == ["ami"] for i in instances)


def test_nat_instance_forwards_traffic_and_is_managed_through_ssm_not_ssh(build):
    plan = build(lambda: Vpc("Vpc"))
    nat = plan.one(INSTANCE).inputs
    assert nat["instanceType"] == "t4g.nano"
    assert nat["sourceDestCheck"] is False
    assert "keyName" not in nat
    assert nat["metadataOptions"]["httpTokens"] == "required"
    assert nat["rootBlockDevice"]["encrypted"] is True
    assert nat["iamInstanceProfile"] == plan.one("aws:iam/instanceProfile:InstanceProfile").inputs["name"]
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    group = plan.named("Vpc-nat_security_group").inputs
    assert nat["vpcSecurityGroupIds"] == [mock_id("sg", "Vpc-nat_security_group")]
    assert [rule["cidrBlocks"] for rule in group["ingress"]] == [["10.0.0.0/16"]]
    eip = plan.one("aws:ec2/eip:Eip").inputs
    assert eip["domain"] == "vpc" and eip["instance"].startswith("i-")


def test_instance_type_comes_from_the_stage(build):
    plan = build(lambda: Vpc("Vpc"), natInstanceType="t4g.micro")
    assert plan.one(INSTANCE).inputs["instanceType"] == "t4g.micro"


def test_private_routes_go_through_a_nat_instance(build):
    one = build(lambda: Vpc("Vpc"), natCount=1)
    assert len(nat_routes(one)) == 2
    assert {r.inputs["networkInterfaceId"] for r in nat_routes(one)} == {mock_id("eni", "Vpc-nat_instance-az1")}
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" for r in nat_routes(one))
    two = build(lambda: Vpc("Vpc"), stage="prod", natCount=2)
    assert {r.name: r.inputs["networkInterfaceId"] for r in nat_routes(two)} == {
        "Vpc-nat_route-az1": mock_id("eni", "Vpc-nat_instance-az1"),
        "Vpc-nat_route-az2": mock_id("eni", "Vpc-nat_instance-az2"),
    }


def test_managed_nat_puts_a_gateway_with_an_elastic_ip_in_each_public_subnet(build):
    plan = build(lambda: Vpc("Vpc"), nat="managed", natCount=2)
    gateways = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(gateways) == 2 and not plan.of_type(INSTANCE)
    assert {g.name: g.inputs["subnetId"] for g in gateways} == {
        "Vpc-nat_gateway-az1": mock_id("subnet", "Vpc-public_subnet-az1"),
        "Vpc-nat_gateway-az2": mock_id("subnet", "Vpc-public_subnet-az2"),
    }
    assert all(g.inputs["allocationId"].startswith("eipalloc-") for g in gateways)
    assert all(r.inputs["natGatewayId"].startswith("nat-") for r in nat_routes(plan))


def test_managed_nat_can_be_a_single_gateway(build):
    plan = build(lambda: Vpc("Vpc"), nat="managed", natCount=1)
    assert len(plan.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len({r.inputs["natGatewayId"] for r in nat_routes(plan)}) == 1


def test_no_nat_leaves_private_subnets_without_a_default_route_but_keeps_the_endpoints(build):
    plan = build(lambda: Vpc("Vpc"), nat="none")
    assert not nat_routes(plan) and not plan.of_type(INSTANCE)
    assert not plan.of_type("aws:ec2/natGateway:NatGateway") and not plan.of_type("aws:ec2/eip:Eip")
    assert len(plan.of_type(ENDPOINT)) == 2


def test_gateway_endpoints_sit_on_the_private_route_tables(build):
    plan = build(lambda: Vpc("Vpc"))
    private_tables = [r for r in plan.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name]
    assert len(private_tables) == 2
    for endpoint in plan.of_type(ENDPOINT):
        assert endpoint.inputs["vpcEndpointType"] == "Gateway"
        assert len(endpoint.inputs["routeTableIds"]) == 2
        assert all(rt.startswith("rtb-") for rt in endpoint.inputs["routeTableIds"])
    public_table = plan.named("Vpc-public_route_table")
    route = plan.named("Vpc-public_route-internet").inputs
    assert route["gatewayId"].startswith("igw-") and route["destinationCidrBlock"] == "0.0.0.0/0"
    assert public_table.inputs.get("routes") in (None, [])


def test_nothing_admits_traffic_from_the_internet(build):
    plan = build(lambda: Vpc("Vpc", bastion=True), nat="ec2")
    for group in plan.of_type(SECURITY_GROUP):
        for rule in group.inputs.get("ingress") or []:
            assert "0.0.0.0/0" not in (rule.get("cidrBlocks") or []), group.name
            assert not (rule["fromPort"] <= 22 <= rule["toPort"] and rule.get("cidrBlocks")
                        and rule["protocol"] != "-1"), group.name
    default = plan.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs
    assert default["ingress"] == [] and default["egress"] == []


def test_component_security_group_admits_only_its_own_members(build):
    plan = build(lambda: Vpc("Vpc"))
    group = plan.named("Vpc-security_group").inputs
    assert group["ingress"] == [
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True, "description": "members of this group"}
    ]
    assert group["namePrefix"] == "harbor-dev-Vpc-"


def test_bastion_is_reached_through_ssm_without_ssh(build):
    plan = build(lambda: Vpc("Vpc", bastion=True))
    bastion = plan.named("Vpc-bastion")
    assert "keyName" not in bastion.inputs and bastion.ignore_changes == ["ami"]
    assert bastion.inputs["associatePublicIpAddress"] is False  # private subnet, out through the NAT
    assert plan.named("Vpc-bastion_security_group").inputs["ingress"] == []
    assert plan.named("Vpc-instance_role_policy-bastion").inputs["policyArn"].endswith("AmazonSSMManagedInstanceCore")


def test_no_bastion_unless_asked(build):
    plan = build(lambda: Vpc("Vpc"))
    assert not [r for r in plan.resources if "bastion" in r.name]


def test_vpc_resources_carry_name_tags_and_follow_no_data_policy(build):
    plan = build(lambda: Vpc("Vpc"), stage="prod", natCount=2)
    assert plan.one("aws:ec2/vpc:Vpc").inputs["tags"] == {"Name": "harbor-prod-Vpc"}
    # Networks hold no data: nothing is protected. On a retaining stage the VPC, its subnets and
    # security groups stay (a kept database sits in them); routes, NAT and gateways go.
    ec2 = [r for r in plan.resources if r.type.startswith("aws:ec2")]
    assert not any(r.protect for r in ec2)
    assert {r.type for r in ec2 if r.retain_on_delete} == {
        "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"}


def test_transform_reaches_the_subnets(build):
    plan = build(lambda: Vpc("Vpc", transform={"private_subnet": {"tags": {"Tier": "private"}}}))
    assert [s.inputs["tags"]["Tier"] for s in subnets(plan, "private")] == ["private", "private"]
    assert subnets(plan, "private")[0].inputs["tags"]["Name"] == "harbor-dev-Vpc-private-us-east-1a"
    assert "Tier" not in subnets(plan, "public")[0].inputs["tags"]


def test_link_exposes_ids_and_grants_nothing(build):
    def body() -> None:
        vpc = Vpc("Vpc")
        pulumi.export("link", link_data([vpc]))
        pulumi.export("statements", link_statements([vpc]))

    plan = build(body)
    link = plan.outputs["link"]["Vpc"]
    assert link["type"] == "sst.aws.Vpc"
    assert link["id"].startswith("vpc-")
    assert len(link["privateSubnetIds"]) == 2 and len(link["publicSubnetIds"]) == 2
    assert link["securityGroupIds"] == [mock_id("sg", "Vpc-security_group")]
    assert plan.outputs["statements"] == []


def test_a_stage_with_a_shared_vpc_creates_only_security_groups_in_it(build):
    from components import Function, Postgres

    shared = {"id": "vpc-0123456789abcdef0",
              "privateSubnetIds": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]}

    def body() -> None:
        vpc = Vpc("Vpc")
        Postgres("Database", vpc=vpc)
        Function("Api", handler="app/functions/items.create", vpc=vpc)

    plan = build(body, stage="pr-3", sharedVpc=shared)
    ec2 = [r for r in plan.resources if r.type.startswith("aws:ec2")]
    # no VPC, subnet, gateway, route, NAT or Elastic IP: only security groups (ours, the database's)
    assert ec2 and {r.type for r in ec2} == {"aws:ec2/securityGroup:SecurityGroup"}
    assert {r.inputs["vpcId"] for r in ec2} == {shared["id"]}
    assert plan.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == shared["privateSubnetIds"]
    config = plan.one("aws:lambda/function:Function").inputs["vpcConfig"]
    assert config["subnetIds"] == shared["privateSubnetIds"]


def test_a_malformed_shared_vpc_is_refused_naming_the_setting(build):
    from stages import StageConfigError

    with pytest.raises(StageConfigError, match=r"harbor:sharedVpc.privateSubnetIds"):
        build(lambda: Vpc("Vpc"), stage="pr-3", sharedVpc={"id": "vpc-0123456789abcdef0", "privateSubnetIds": []})


def test_a_security_group_description_change_replaces_beside_the_old_group(build):
    before = build(lambda: Vpc("Vpc"))
    after = build(lambda: Vpc("Vpc", transform={"security_group": {"description": "Edited"}}))
    old, new = (p.one(SECURITY_GROUP, "Vpc-security_group") for p in (before, after))
    # AWS completes the name, so the new group is created beside the old one, the members
    # move over, and only then is the old one deleted.
    assert "name" not in new.inputs and new.inputs["namePrefix"] == "harbor-dev-Vpc-"
    assert replacement_outcome(old, new) == "coexist"


def test_moving_a_zone_in_the_stage_file_replaces_that_slots_subnets_old_first(build):
    before = build(lambda: Vpc("Vpc"), availabilityZones=["us-east-1a", "us-east-1b"])
    after = build(lambda: Vpc("Vpc"), availabilityZones=["us-east-1a", "us-east-1c"])
    for kind in ("public", "private"):
        (kept_old, moved_old), (kept_new, moved_new) = subnets(before, kind), subnets(after, kind)
        # Same slot, same logical name: a replacement, not a new subnet beside the old one.
        assert moved_new.name == moved_old.name == f"Vpc-{kind}_subnet-az2"
        assert kept_new.inputs == kept_old.inputs
        # Same CIDR in the same VPC: two generations cannot coexist, so the old goes first.
        assert moved_new.inputs["cidrBlock"] == moved_old.inputs["cidrBlock"]
        assert replacement_outcome(moved_old, moved_new) == "delete-first"
    # Stacks deployed when subnets were named by zone letter keep their state under the new names.
    assert before.named("Vpc-private_subnet-az2").aliases == ["Vpc-private_subnet-b"]
    assert before.named("Vpc-route_table_association-public-az1").aliases == [
        "Vpc-route_table_association-public-a"]


def _zones_planned(build, zones, **settings) -> list[str]:
    from infra.mocks import MockContext

    plan = build(lambda: Vpc("Vpc"), context=MockContext(zones=zones), azCount=2, natCount=1, **settings)
    return [s.inputs["availabilityZone"] for s in subnets(plan, "private")]


def test_zones_stay_put_when_a_zone_is_impaired_or_a_local_zone_is_opted_in(build):
    from infra.mocks import MockZone, default_zones

    usual = default_zones("us-east-1")
    assert _zones_planned(build, usual) == ["us-east-1a", "us-east-1b"]
    impaired = [MockZone(z.name, z.zone_id, state="impaired") if z.name == "us-east-1a" else z for z in usual]
    local = [MockZone("us-east-1-bos-1a", "use1-bos1-az1", zone_type="local-zone", opt_in_status="opted-in"),
             MockZone("us-east-1-wl1-bos-wlz-1", "use1-wl1-bos-wlz1", zone_type="wavelength-zone",
                      opt_in_status="opted-in"),
             *impaired]
    assert _zones_planned(build, local) == ["us-east-1a", "us-east-1b"]


def test_zones_written_in_the_stage_file_are_used_whatever_the_region_reports(build):
    from infra.mocks import MockZone, default_zones

    impaired = [MockZone(z.name, z.zone_id, state="impaired") if z.name == "us-east-1f" else z
                for z in default_zones("us-east-1")]
    assert _zones_planned(build, impaired, availabilityZones=["us-east-1c", "us-east-1f"]) == [
        "us-east-1c", "us-east-1f"]
    local = [MockZone("us-east-1-bos-1a", "use1-bos1-az1", zone_type="local-zone", opt_in_status="opted-in"),
             *impaired]
    with pytest.raises(ComponentError, match=r"us-east-1-bos-1a are not standard availability zones"):
        _zones_planned(build, local, availabilityZones=["us-east-1-bos-1a", "us-east-1c"])


@pytest.mark.parametrize(("instance_type", "architecture"), [
    ("t4g.nano", "arm64"), ("c7gn.medium", "arm64"), ("a1.medium", "arm64"), ("m8g.large", "arm64"),
    ("t3.nano", "x86_64"), ("t3a.micro", "x86_64"), ("c7i-flex.large", "x86_64"), ("g4dn.xlarge", "x86_64"),
])
def test_nat_and_bastion_images_match_the_instance_types_architecture(instance_type, architecture):
    mocks = RecordingMocks()
    settings = stage_config("dev", natInstanceType=instance_type)
    run_mocked(lambda: (start_app(), Vpc("Vpc", bastion=True)), APP, "dev", settings, mocks=mocks)
    lookups = [args for token, args in mocks.calls if token == "aws:ec2/getAmi:getAmi"]
    assert len(lookups) == 2
    for lookup in lookups:
        filters = {f["name"]: f["values"] for f in lookup["filters"]}
        assert filters["architecture"] == [architecture]
    names = sorted(f["values"][0] for lookup in lookups for f in lookup["filters"] if f["name"] == "name")
    assert names == [f"al2023-ami-2023.*-kernel-*-{architecture}", "fck-nat-al2023-*"]


@pytest.mark.parametrize("instance_type", ["mac2.metal", "u-6tb1.56xlarge", "c7g.metal"])
def test_an_instance_type_no_nat_image_runs_on_is_refused_before_any_resource(build, instance_type):
    with pytest.raises(ComponentError, match=rf"natInstanceType '{instance_type}' is not a general EC2 type"):
        build(lambda: Vpc("Vpc"), natInstanceType=instance_type)


def test_prod_records_its_traffic_to_a_log_group_with_the_stages_retention(plan_stage):
    plan = plan_stage("prod")
    flow = plan.one("aws:ec2/flowLog:FlowLog")
    group = plan.named("Vpc-flow_log_group")
    role = plan.named("Vpc-flow_log_role")
    policy = plan.named("Vpc-flow_log_policy")
    assert flow.inputs["trafficType"] == "ALL" and flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow.inputs["vpcId"] == mock_id("vpc", "Vpc-vpc")
    assert flow.inputs["logDestination"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{group.inputs['name']}"
    assert group.inputs == {"name": "/aws/vpc/flow-logs/harbor-prod-Vpc", "retentionInDays": 30}
    # Least privilege: the flow-logs service, for this account's flow logs, writing to this group.
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                      "ArnLike": {"aws:SourceArn": "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/*"}},
    }]
    (grant,) = json.loads(policy.inputs["policy"])["Statement"]
    arn = flow.inputs["logDestination"]
    assert grant == {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams",
                                                   "logs:PutLogEvents"], "Resource": [arn, f"{arn}:*"]}
    assert policy.urn in flow.dependencies


@pytest.mark.parametrize(("stage", "settings", "expected"), [
    ("dev", {}, 0), ("staging", {}, 0), ("dev", {"flowLogs": True}, 1), ("prod", {"flowLogs": False}, 0),
])
def test_flow_logs_follow_the_stage(build, stage, settings, expected):
    plan = build(lambda: Vpc("Vpc"), stage=stage, **settings)
    assert len(plan.of_type("aws:ec2/flowLog:FlowLog")) == expected


def test_nat_instances_wait_for_the_ssm_policy_of_their_profile(build):
    plan = build(lambda: Vpc("Vpc"))
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert plan.waits_for(plan.one(INSTANCE), attachment)
