"""Vpc: a private network with public and private subnets per zone, NAT and free gateway endpoints.

Example (seed 002: two zones, cheap EC2 NAT)::

    vpc = Vpc("Vpc")                                  # zones and NAT from the stage file
    vpc = Vpc("Vpc", cidr="10.20.0.0/16", bastion=True)

What the stage decides (``Pulumi.<stage>.yaml``): ``azCount`` or ``availabilityZones``,
``nat`` (``none``, ``ec2``, ``managed``), ``natCount`` and ``natInstanceType``.

Secure defaults: nothing admits traffic from the internet; the VPC's default security
group is emptied; NAT instances run the fck-nat AMI with IMDSv2, an encrypted root
volume and SSM instead of SSH; private route tables send S3 and DynamoDB traffic
through gateway endpoints (free, and it keeps that traffic off the NAT).

Subnets: the CIDR is split into 16 equal blocks; zone ``i`` gets block ``i`` as its public
subnet and block ``8 + i`` as its private one. Blocks are reserved for six zones, so adding
a zone later never renumbers an existing subnet (a renumbered subnet is a replaced one).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from components.core.base import Component, ComponentArgs
from components.core.linking import Permission
from stages.model import SharedVpc

NatType = Literal["none", "ec2", "managed"]

# fck-nat publishes its AMIs from this account, for arm64 (t4g.nano, seed 002) and x86_64.
FCK_NAT_OWNER = "568608671756"
FCK_NAT_NAME = "fck-nat-al2023-*"
AMAZON_OWNER = "amazon"
AL2023_NAME = "al2023-ami-2023.*-kernel-*-{architecture}"
# EC2 family names: a "g" right after the generation marks AWS Graviton (arm64): t4g, c7gn,
# m8g, x2gd, im4gn; a1 is the first Graviton. Families without it are x86_64 (t3, t3a, c7i).
_FAMILY = re.compile(r"^(?P<series>[a-z]+)(?P<generation>\d+)(?P<options>[a-z-]*)$")
# Families EC2 runs only on dedicated hosts or as bare metal; no NAT image or sense for them.
_NOT_FOR_NAT = ("mac", "u-", "f1", "vt1")
SSM_POLICY = "AmazonSSMManagedInstanceCore"
# What the flow-logs service does with an existing group: add its streams and write to them.
FLOW_LOG_ACTIONS = ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents")

# 16 blocks: public subnets take blocks 0-5, private ones 8-13, for up to six zones.
SPLIT_BITS = 4
PRIVATE_OFFSET = 8
MAX_ZONES = 6
SMALLEST_SUBNET = 28  # AWS refuses subnets smaller than a /28


class VpcArgs(ComponentArgs):
    """Arguments of :class:`Vpc`. Zones and NAT default to the stage's settings."""

    cidr: str = Field("10.0.0.0/16", description="the VPC's IPv4 range (a private RFC 1918 block)")
    nat: NatType | None = Field(None, description="override the stage's NAT type")
    nat_count: int | None = Field(None, ge=1, le=MAX_ZONES, description="override the stage's natCount")
    az_count: int | None = Field(None, ge=1, le=MAX_ZONES, description="override the stage's azCount")
    bastion: bool = Field(False, description="a small instance reachable through SSM Session Manager")
    existing: SharedVpc | None = Field(
        None,
        description="join this VPC ({id, private_subnet_ids, public_subnet_ids}) and create only the "
        "components' security group in it; default: the stage's sharedVpc, else a new VPC",
    )
    flow_logs: bool | None = Field(
        None, description="record traffic to CloudWatch Logs; default: the stage's flowLogs (on in prod)"
    )

    @field_validator("cidr")
    @classmethod
    def _usable_cidr(cls, cidr: str) -> str:
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as error:
            raise ValueError(f"cidr {cidr!r} is not an IPv4 network like 10.0.0.0/16 ({error})") from None
        if not network.is_private:
            raise ValueError(f"cidr {cidr} is public address space; use a private range such as 10.0.0.0/16")
        if network.prefixlen < 16:
            raise ValueError(f"cidr {cidr} is larger than AWS allows for a VPC; use a /16 to /24")
        subnet_prefix = network.prefixlen + SPLIT_BITS
        if subnet_prefix > SMALLEST_SUBNET:
            raise ValueError(
                f"cidr {cidr} is too small for the subnets: it is split into 16 blocks (a public and a "
                f"private subnet for each of up to {MAX_ZONES} zones) and each would be a /{subnet_prefix}, "
                f"below AWS's /{SMALLEST_SUBNET} minimum; use a /24 or larger range"
            )
        return cidr


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """The CPU architecture of an EC2 instance type, for picking its image.

    Raises ``ValueError`` naming the problem for a type no NAT image runs on.
    """
    family = instance_type.split(".", 1)[0]
    match = _FAMILY.match(family)
    if family == "a1":
        return "arm64"
    if match is None or family.startswith(_NOT_FOR_NAT) or ".metal" in instance_type:
        raise ValueError(
            f"natInstanceType {instance_type!r} is not a general EC2 type a NAT image runs on; use a "
            "Graviton type such as t4g.nano (arm64) or an x86_64 one such as t3.nano"
        )
    return "arm64" if match.group("options").startswith("g") else "x86_64"


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """The public and private subnet ranges for ``zones`` zones, carved from ``cidr``."""
    blocks = list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=SPLIT_BITS))
    public = [str(blocks[i]) for i in range(zones)]
    private = [str(blocks[PRIVATE_OFFSET + i]) for i in range(zones)]
    return public, private


class Vpc(Component):
    """A VPC with a public and a private subnet in each zone.

    Outputs: ``id``, ``cidr``, ``availability_zones`` (plain names), ``public_subnet_ids`` and
    ``private_subnet_ids`` (one Output per zone), ``security_group_id`` (the group that
    components inside the VPC join: functions, the database's clients), ``nat_instance_ids``.
    Transformable children: ``vpc``, ``default_security_group``, ``internet_gateway``,
    ``public_subnet``, ``private_subnet``, ``public_route_table``, ``public_route``,
    ``private_route_table``, ``nat_route``, ``route_table_association``, ``security_group``,
    ``nat_security_group``, ``instance_role``, ``instance_role_policy``, ``instance_profile``
    (NAT instances and bastion), ``nat_instance``, ``nat_eip``, ``nat_gateway``, ``s3_endpoint``,
    ``dynamodb_endpoint``, ``bastion_security_group``, ``bastion``, ``flow_log_group``,
    ``flow_log_role``, ``flow_log_policy``, ``flow_log`` (with the stage's ``flowLogs``).
    """

    type_token: ClassVar[str] = "harbor:aws:Vpc"
    sst_type: ClassVar[str] = "sst.aws.Vpc"
    Args: ClassVar[type[ComponentArgs]] = VpcArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "vpc", "default_security_group", "internet_gateway", "public_subnet", "private_subnet",
        "public_route_table", "public_route", "private_route_table", "nat_route",
        "route_table_association", "security_group", "nat_security_group", "instance_role",
        "instance_role_policy", "instance_profile", "nat_instance", "nat_eip", "nat_gateway",
        "s3_endpoint", "dynamodb_endpoint", "bastion_security_group", "bastion",
        "flow_log_group", "flow_log_role", "flow_log_policy", "flow_log",
    )

    args: VpcArgs

    def __init__(
        self,
        name: str,
        args: VpcArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        stage = self.stage
        existing = a.existing or stage.shared_vpc
        if existing is not None:
            self._join(existing)
            return
        self.nat_type: NatType = a.nat or stage.nat
        zone_count = a.az_count or stage.az_count
        nat_count = a.nat_count or stage.nat_count
        if self.nat_type != "none" and nat_count > zone_count:
            raise self.fail(
                f"nat_count {nat_count} is more than the {zone_count} zones; one NAT per zone is the most "
                "that helps, so lower natCount or raise azCount"
            )
        uses_instances = self.nat_type == "ec2" or a.bastion
        try:
            self.architecture = instance_architecture(stage.nat_instance_type) if uses_instances else "arm64"
        except ValueError as error:
            raise self.fail(str(error)) from None
        self.availability_zones: list[str] = self._zones(zone_count)
        self.cidr = a.cidr
        public_cidrs, private_cidrs = subnet_cidrs(a.cidr, zone_count)

        self.vpc = self.child(
            "vpc",
            aws.ec2.Vpc,
            {
                "cidr_block": a.cidr,
                "enable_dns_support": True,
                "enable_dns_hostnames": True,
                "tags": self._name_tag(),
            },
        )
        vpc_id = self.vpc.id
        # AWS's default group lets members reach each other on every port; empty it so
        # only groups this component (or a user) creates on purpose admit anything.
        self.child(
            "default_security_group",
            aws.ec2.DefaultSecurityGroup,
            {"vpc_id": vpc_id, "ingress": [], "egress": [], "tags": self._name_tag("-default")},
        )
        self.internet_gateway = self.child(
            "internet_gateway",
            aws.ec2.InternetGateway,
            {"vpc_id": vpc_id, "tags": self._name_tag()},
        )

        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        for index, (zone, public_cidr, private_cidr) in enumerate(
            zip(self.availability_zones, public_cidrs, private_cidrs, strict=True)
        ):
            self.public_subnets.append(
                self.child(
                    "public_subnet",
                    aws.ec2.Subnet,
                    {
                        "vpc_id": vpc_id,
                        "cidr_block": public_cidr,
                        "availability_zone": zone,
                        # Only resources that ask for a public address get one (the NAT's EIP).
                        "map_public_ip_on_launch": False,
                        "tags": self._name_tag(f"-public-{zone}"),
                    },
                    **self._zone_slot("public_subnet", index),
                )
            )
            self.private_subnets.append(
                self.child(
                    "private_subnet",
                    aws.ec2.Subnet,
                    {
                        "vpc_id": vpc_id,
                        "cidr_block": private_cidr,
                        "availability_zone": zone,
                        "map_public_ip_on_launch": False,
                        "tags": self._name_tag(f"-private-{zone}"),
                    },
                    **self._zone_slot("private_subnet", index),
                )
            )

        public_table = self.child(
            "public_route_table",
            aws.ec2.RouteTable,
            {"vpc_id": vpc_id, "tags": self._name_tag("-public")},
        )
        self.child(
            "public_route",
            aws.ec2.Route,
            {
                "route_table_id": public_table.id,
                "destination_cidr_block": "0.0.0.0/0",
                "gateway_id": self.internet_gateway.id,
            },
            key="internet",
        )
        for index, subnet in enumerate(self.public_subnets):
            self.child(
                "route_table_association",
                aws.ec2.RouteTableAssociation,
                {"route_table_id": public_table.id, "subnet_id": subnet.id},
                **self._zone_slot("route_table_association", index, "public-"),
            )

        self.security_group = self._component_group(vpc_id)

        nat_targets = self._nat(nat_count)
        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (zone, subnet) in enumerate(zip(self.availability_zones, self.private_subnets, strict=True)):
            table = self.child(
                "private_route_table",
                aws.ec2.RouteTable,
                {"vpc_id": vpc_id, "tags": self._name_tag(f"-private-{zone}")},
                **self._zone_slot("private_route_table", index),
            )
            self.private_route_tables.append(table)
            self.child(
                "route_table_association",
                aws.ec2.RouteTableAssociation,
                {"route_table_id": table.id, "subnet_id": subnet.id},
                **self._zone_slot("route_table_association", index, "private-"),
            )
            if nat_targets:
                # Zones beyond natCount share a NAT in another zone: cheaper, one hop further.
                target = nat_targets[index % len(nat_targets)]
                self.child(
                    "nat_route",
                    aws.ec2.Route,
                    {"route_table_id": table.id, "destination_cidr_block": "0.0.0.0/0", **target},
                    **self._zone_slot("nat_route", index),
                )

        route_table_ids = [table.id for table in self.private_route_tables]
        for service in ("s3", "dynamodb"):
            self.child(
                f"{service}_endpoint",
                aws.ec2.VpcEndpoint,
                {
                    "vpc_id": vpc_id,
                    "service_name": f"com.amazonaws.{stage.region}.{service}",
                    "vpc_endpoint_type": "Gateway",
                    "route_table_ids": route_table_ids,
                    "tags": self._name_tag(f"-{service}"),
                },
            )

        self.bastion: aws.ec2.Instance | None = self._bastion() if a.bastion else None
        if stage.flow_logs if a.flow_logs is None else a.flow_logs:
            self._flow_logs()

        self.id: pulumi.Output[str] = vpc_id
        self.public_subnet_ids: list[pulumi.Output[str]] = [s.id for s in self.public_subnets]
        self.private_subnet_ids: list[pulumi.Output[str]] = [s.id for s in self.private_subnets]
        self.security_group_id: pulumi.Output[str] = self.security_group.id
        self.register_outputs(
            {
                "id": self.id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "securityGroupId": self.security_group_id,
            }
        )

    def _component_group(self, vpc_id: pulumi.Input[str]) -> aws.ec2.SecurityGroup:
        return self.child(
            "security_group",
            aws.ec2.SecurityGroup,
            {
                "vpc_id": vpc_id,
                "name": self.physical_name("ec2.security-group"),
                "description": "Components inside the VPC; members reach each other, nothing from outside",
                "ingress": [
                    {"protocol": "-1", "from_port": 0, "to_port": 0, "self": True,
                     "description": "members of this group"}
                ],
                # Functions call AWS APIs and third parties through the NAT.
                "egress": [
                    {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"],
                     "description": "outbound through the NAT or gateway endpoints"}
                ],
                "tags": self._name_tag(),
            },
        )

    def _join(self, existing: SharedVpc) -> None:
        """Use a VPC someone else owns (a preview stage in the shared network): only our group."""
        self.nat_type = "none"
        self.cidr = None
        self.availability_zones = []
        self.public_subnets, self.private_subnets, self.private_route_tables = [], [], []
        self.nat_instance_ids = []
        self.bastion = None
        self.security_group = self._component_group(existing.id)
        self.id = pulumi.Output.from_input(existing.id)
        self.public_subnet_ids = [pulumi.Output.from_input(s) for s in existing.public_subnet_ids]
        self.private_subnet_ids = [pulumi.Output.from_input(s) for s in existing.private_subnet_ids]
        self.security_group_id = self.security_group.id
        self.register_outputs(
            {
                "id": self.id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "securityGroupId": self.security_group_id,
            }
        )

    # -- zones ---------------------------------------------------------------------------
    def _zones(self, count: int) -> list[str]:
        """The stage's zones: written in the stage file, else the first ``count`` standard zones.

        Only standard zones count (not Local or Wavelength Zones, which an account may opt
        into later), in every state (an impaired zone must not drop out of the list), sorted
        by name: the same zones on every run, so no ``up`` ever moves subnets, NAT or the
        database's subnet group. An impossible request stops the plan here.
        """
        stage = self.stage
        with self.app.synchronous_lookup() as provider:
            found = sorted(
                aws.get_availability_zones(
                    filters=[
                        {"name": "zone-type", "values": ["availability-zone"]},
                        {"name": "opt-in-status", "values": ["opt-in-not-required"]},
                    ],
                    opts=pulumi.InvokeOptions(provider=provider),
                ).names
            )
        if stage.availability_zones is not None and self.args.az_count is None:
            unknown = [zone for zone in stage.availability_zones if zone not in found]
            if unknown:
                raise self.fail(
                    f"availabilityZones {', '.join(unknown)} are not standard availability zones of "
                    f"{stage.region} (it has {', '.join(found)}); pick zones from that list"
                )
            return list(stage.availability_zones)
        if count > len(found):
            raise self.fail(
                f"azCount {count} asks for more zones than {stage.region} has ({len(found)}: "
                f"{', '.join(found)}); set azCount to {len(found)} or less"
            )
        return list(found[:count])

    # -- NAT -----------------------------------------------------------------------------
    def _nat(self, count: int) -> list[dict[str, pulumi.Input[str]]]:
        """Create the NATs; returns, per NAT, the route target private subnets use."""
        self.nat_instance_ids: list[pulumi.Output[str]] = []
        self.nat_public_ips: list[pulumi.Output[str]] = []
        if self.nat_type == "none":
            return []
        if self.nat_type == "managed":
            targets = []
            for index in range(count):
                zone = self.availability_zones[index]
                eip = self.child(
                    "nat_eip", aws.ec2.Eip, {"domain": "vpc", "tags": self._name_tag(f"-nat-{zone}")},
                    **self._zone_slot("nat_eip", index),
                )
                gateway = self.child(
                    "nat_gateway",
                    aws.ec2.NatGateway,
                    {
                        "allocation_id": eip.allocation_id,
                        "subnet_id": self.public_subnets[index].id,
                        "tags": self._name_tag(f"-nat-{zone}"),
                    },
                    **self._zone_slot("nat_gateway", index, opts=pulumi.ResourceOptions(
                        depends_on=[self.internet_gateway])),
                )
                self.nat_public_ips.append(eip.public_ip)
                targets.append({"nat_gateway_id": gateway.id})
            return targets
        return self._nat_instances(count)

    def _instance_profile(self, role_name: str) -> aws.iam.InstanceProfile:
        """An instance profile that lets SSM manage the instance, and nothing else."""
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        role = self.child(
            "instance_role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role", suffix=f"-{role_name}"),
                "assume_role_policy": pulumi.Output.json_dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "sts:AssumeRole",
                             "Principal": {"Service": "ec2.amazonaws.com"}}
                        ],
                    }
                ),
            },
            key=role_name,
        )
        attachment = self.child(
            "instance_role_policy",
            aws.iam.RolePolicyAttachment,
            {
                "role": role.name,
                "policy_arn": partition.apply(lambda p: f"arn:{p}:iam::aws:policy/{SSM_POLICY}"),
            },
            key=role_name,
        )
        # The instance reaches SSM at boot with this profile; the policy must be attached by then
        # (and stay attached until the instance is gone), so the profile waits for it.
        return self.child(
            "instance_profile",
            aws.iam.InstanceProfile,
            {"name": self.physical_name("iam.role", suffix=f"-{role_name}"), "role": role.name},
            key=role_name,
            opts=pulumi.ResourceOptions(depends_on=[attachment]),
        )

    def _nat_instances(self, count: int) -> list[dict[str, pulumi.Input[str]]]:
        stage = self.stage
        nat_group = self.child(
            "nat_security_group",
            aws.ec2.SecurityGroup,
            {
                "vpc_id": self.vpc.id,
                "name": self.physical_name("ec2.security-group", suffix="-nat"),
                "description": "NAT instances: forward traffic from inside the VPC; no SSH",
                "ingress": [
                    {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [self.cidr],
                     "description": "traffic to forward, from inside the VPC only"}
                ],
                "egress": [
                    {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"],
                     "description": "forwarded traffic to the internet"}
                ],
                "tags": self._name_tag("-nat"),
            },
        )
        profile = self._instance_profile("nat")
        ami = self._newest_ami(FCK_NAT_OWNER, FCK_NAT_NAME)
        targets = []
        for index in range(count):
            zone = self.availability_zones[index]
            instance = self.child(
                "nat_instance",
                aws.ec2.Instance,
                {
                    "ami": ami.id,
                    "instance_type": stage.nat_instance_type,
                    "subnet_id": self.public_subnets[index].id,
                    "vpc_security_group_ids": [nat_group.id],
                    "iam_instance_profile": profile.name,
                    # A NAT forwards packets addressed to others; AWS drops them unless this is off.
                    "source_dest_check": False,
                    "metadata_options": {"http_tokens": "required", "http_endpoint": "enabled"},
                    "root_block_device": {"encrypted": True, "volume_type": "gp3"},
                    "tags": self._name_tag(f"-nat-{zone}"),
                },
                # The lookup returns the newest fck-nat release; without ignoring it every release
                # would replace the running NATs (and cut private traffic) on the next deploy.
                **self._zone_slot("nat_instance", index, opts=pulumi.ResourceOptions(
                    ignore_changes=["ami"], depends_on=[self.internet_gateway])),
            )
            eip = self.child(
                "nat_eip",
                aws.ec2.Eip,
                {"domain": "vpc", "instance": instance.id, "tags": self._name_tag(f"-nat-{zone}")},
                **self._zone_slot("nat_eip", index),
            )
            self.nat_instance_ids.append(instance.id)
            self.nat_public_ips.append(eip.public_ip)
            targets.append({"network_interface_id": instance.primary_network_interface_id})
        return targets

    def _newest_ami(self, owner: str, name_pattern: str) -> pulumi.Output[Any]:
        """The newest image of one publisher for the instance type's architecture (looked up
        by owner, never by name alone): a t3.nano gets an x86_64 image, a t4g.nano arm64."""
        return aws.ec2.get_ami_output(
            most_recent=True,
            owners=[owner],
            filters=[
                {"name": "name", "values": [name_pattern]},
                {"name": "architecture", "values": [self.architecture]},
            ],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

    def _bastion(self) -> aws.ec2.Instance:
        """A bastion for port forwarding through SSM Session Manager: no key pair, no open port."""
        group = self.child(
            "bastion_security_group",
            aws.ec2.SecurityGroup,
            {
                "vpc_id": self.vpc.id,
                "name": self.physical_name("ec2.security-group", suffix="-bastion"),
                "description": "Bastion: reached through SSM Session Manager only, no inbound rules",
                "ingress": [],
                "egress": [
                    {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"],
                     "description": "SSM and forwarded sessions"}
                ],
                "tags": self._name_tag("-bastion"),
            },
        )
        profile = self._instance_profile("bastion")
        ami = self._newest_ami(AMAZON_OWNER, AL2023_NAME.format(architecture=self.architecture))
        # In a public subnet with a public address when there is no NAT, so it can reach SSM.
        public = self.nat_type == "none"
        subnets = self.public_subnets if public else self.private_subnets
        return self.child(
            "bastion",
            aws.ec2.Instance,
            {
                "ami": ami.id,
                "instance_type": self.stage.nat_instance_type,
                "subnet_id": subnets[0].id,
                "associate_public_ip_address": public,
                "vpc_security_group_ids": [group.id, self.security_group.id],
                "iam_instance_profile": profile.name,
                "metadata_options": {"http_tokens": "required", "http_endpoint": "enabled"},
                "root_block_device": {"encrypted": True, "volume_type": "gp3"},
                "tags": self._name_tag("-bastion"),
            },
            opts=pulumi.ResourceOptions(ignore_changes=["ami"]),
        )

    # -- flow logs -----------------------------------------------------------------------
    def _flow_logs(self) -> None:
        """Every accepted and rejected flow to a log group with the stage's retention.

        The role trusts the flow-logs service only for this account's flow logs (the
        confused-deputy conditions AWS recommends) and may write to this one group only.
        """
        stage = self.stage
        group = self.child(
            "flow_log_group",
            aws.cloudwatch.LogGroup,
            {"name": f"/aws/vpc/flow-logs/{self.physical_name('logs.group')}",
             "retention_in_days": stage.log_retention_days},
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = self.child(
            "flow_log_role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role", suffix="-flow-logs"),
                "assume_role_policy": account.apply(lambda acct: json.dumps({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": acct},
                            "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{stage.region}:{acct}:vpc-flow-log/*"},
                        },
                    }],
                }, sort_keys=True)),
            },
        )
        policy = self.child(
            "flow_log_policy",
            aws.iam.RolePolicy,
            {
                "role": role.id,
                "policy": group.arn.apply(lambda arn: json.dumps({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": list(FLOW_LOG_ACTIONS),
                        "Resource": [arn, f"{arn}:*"],
                    }],
                }, sort_keys=True)),
            },
        )
        self.flow_log = self.child(
            "flow_log",
            aws.ec2.FlowLog,
            {
                "vpc_id": self.vpc.id,
                "traffic_type": "ALL",
                "log_destination_type": "cloud-watch-logs",
                "log_destination": group.arn,
                "iam_role_arn": role.arn,
                "max_aggregation_interval": 600,
                "tags": self._name_tag("-flow-logs"),
            },
            # Delivery starts at create: the role must already be allowed to write.
            opts=pulumi.ResourceOptions(depends_on=[policy]),
        )

    def _zone_slot(
        self, role: str, index: int, prefix: str = "", opts: pulumi.ResourceOptions | None = None
    ) -> dict[str, Any]:
        """``key`` and ``opts`` of a per-zone child: named by position (``az1``, ``az2``), not by zone.

        A zone moved in the stage file then replaces the subnet in that slot (the old one is
        deleted first: its CIDR is the new one's) together with what sits in it, instead of
        creating a subnet with the same CIDR before the old one is gone. Stacks deployed when
        children were named by zone letter (``Vpc-private_subnet-a``) keep them through the alias.
        """
        letter = self.availability_zones[index][-1:]
        earlier = pulumi.Alias(name=f"{self.component_name}-{role}-{prefix}{letter}")
        return {
            "key": f"{prefix}az{index + 1}",
            "opts": pulumi.ResourceOptions.merge(pulumi.ResourceOptions(aliases=[earlier]), opts),
        }

    def _name_tag(self, suffix: str = "") -> dict[str, str]:
        """The Name tag the EC2 console shows; app and stage tags come from the provider."""
        return {"Name": self.physical_name("ec2.tag", suffix=suffix)}

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {
            "id": self.id,
            "publicSubnetIds": pulumi.Output.all(*self.public_subnet_ids),
            "privateSubnetIds": pulumi.Output.all(*self.private_subnet_ids),
            "securityGroupIds": pulumi.Output.all(self.security_group_id),
        }

    def link_permissions(self) -> Sequence[Permission]:
        # Knowing the network's ids grants nothing; joining it is done through the function's config.
        return []
