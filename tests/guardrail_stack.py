"""A synthetic stack for the guardrail tests: one of every resource the rules read, done right.

Shared by tests/test_check.py and tests/test_policy.py; each test breaks one thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra.rules import Context, Resource

PROD = Context(stage="prod", protecting=True, production=True)
DEV = Context(stage="dev", protecting=False)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:harbor-prod-jobs"


def policy_json(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def good_stack() -> list[Resource]:
    """One of every resource the rules read, configured the way the rules want."""
    bucket = "harbor-prod-assets-1a2b3c4d"
    site = Resource("harbor:aws:Nextjs", "Web", urn="urn:pulumi:prod::harbor::harbor:aws:Nextjs::Web",
                    parent="urn:pulumi:prod::harbor::pulumi:pulumi:Stack::harbor-prod")
    stateful = {"protect": True, "retain_on_delete": True}
    role = Resource("aws:iam/role:Role", "worker-role", {"name": "harbor-prod-worker"})
    vpc_access = Resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "worker-vpc-access", {
        "role": "harbor-prod-worker",
        "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"},
        dependencies=[role.urn])
    worker_policy_urn = "urn:pulumi:test::harbor::aws:iam/rolePolicy:RolePolicy::worker-policy"
    return [
        role,
        vpc_access,
        Resource("aws:ec2/subnet:Subnet", "private-a", {
            "cidrBlock": "10.0.128.0/20", "availabilityZone": "us-east-1a", "vpcId": "vpc-1"},
            delete_before_replace=True),
        Resource("pulumi:pulumi:Stack", "harbor-prod", urn="urn:pulumi:prod::harbor::pulumi:pulumi:Stack::harbor-prod"),
        site,
        Resource("aws:s3/bucket:Bucket", "assets", {"bucket": bucket}, **stateful),
        Resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "assets-pab", {
            "bucket": bucket, "blockPublicAcls": True, "blockPublicPolicy": True,
            "ignorePublicAcls": True, "restrictPublicBuckets": True}),
        Resource("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "assets-enc", {"bucket": bucket, "rules": [
                     {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
        Resource("aws:s3/bucketPolicy:BucketPolicy", "assets-policy", {"bucket": bucket, "policy": policy_json(
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}})}),
        Resource("aws:s3/bucketVersioning:BucketVersioning", "assets-versioning",
                 {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}}),
        Resource("aws:dynamodb/table:Table", "table", {
            "name": "harbor-prod-table", "serverSideEncryption": {"enabled": True},
            "pointInTimeRecovery": {"enabled": True}, "deletionProtectionEnabled": True}, **stateful),
        Resource("aws:rds/cluster:Cluster", "db", {
            "storageEncrypted": True, "deletionProtection": True, "backupRetentionPeriod": 14.0,
            "skipFinalSnapshot": False, "finalSnapshotIdentifier": "harbor-prod-db-final"}, **stateful),
        Resource("aws:rds/clusterInstance:ClusterInstance", "db-1", {"publiclyAccessible": False}),
        Resource("aws:sqs/queue:Queue", "jobs", {
            "name": "harbor-prod-jobs", "sqsManagedSseEnabled": True,
            "redrivePolicy": json.dumps({"deadLetterTargetArn": QUEUE_ARN + "-dlq", "maxReceiveCount": 5})}),
        Resource("aws:sqs/queue:Queue", "jobs-dlq", {"name": "harbor-prod-jobs-dlq", "sqsManagedSseEnabled": True}),
        Resource("aws:lambda/eventSourceMapping:EventSourceMapping", "jobs-consumer", {
            "eventSourceArn": QUEUE_ARN, "functionName": "harbor-prod-worker"}),
        Resource("aws:sns/topic:Topic", "events", {"kmsMasterKeyId": "alias/aws/sns", "fifoTopic": True}),
        Resource("aws:lambda/function:Function", "worker", {
            "name": "harbor-prod-worker", "loggingConfig": {"logFormat": "JSON", "logGroup": "/harbor/prod/worker"},
            "vpcConfig": {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}},
            dependencies=[role.urn, vpc_access.urn, worker_policy_urn]),
        Resource("aws:lambda/function:Function", "api", {"name": "harbor-prod-api"}),
        Resource("aws:cloudwatch/logGroup:LogGroup", "worker-logs", {
            "name": "/harbor/prod/worker", "retentionInDays": 30.0, "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}),
        Resource("aws:cloudwatch/logGroup:LogGroup", "api-logs", {
            "name": "/aws/lambda/harbor-prod-api", "retentionInDays": 30.0,
            "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}),
        Resource("aws:iam/rolePolicy:RolePolicy", "worker-policy", {"policy": policy_json(
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
             "Resource": ["arn:aws:dynamodb:us-east-1:1:table/harbor-prod-table"]},
            {"Effect": "Allow", "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces"],
             "Resource": "*"})}, dependencies=[role.urn]),
        Resource("aws:ec2/securityGroup:SecurityGroup", "db-sg", {
            "namePrefix": "harbor-prod-db-", "description": "Postgres from the VPC",
            "ingress": [{"fromPort": 5432.0, "toPort": 5432.0, "protocol": "tcp", "cidrBlocks": ["10.0.0.0/16"]}],
            "egress": [{"fromPort": 0.0, "toPort": 0.0, "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]}),
        Resource("aws:lambda/functionUrl:FunctionUrl", "server-url", {"authorizationType": "NONE"},
                 urn="urn:pulumi:prod::harbor::harbor:aws:Nextjs$aws:lambda/functionUrl:FunctionUrl::server-url",
                 parent=site.urn),
        Resource("aws:cloudfront/distribution:Distribution", "cdn", {
            "viewerCertificate": {"acmCertificateArn": "arn:aws:acm:us-east-1:1:certificate/c",
                                  "minimumProtocolVersion": "TLSv1.2_2021", "sslSupportMethod": "sni-only"},
            "defaultCacheBehavior": {"viewerProtocolPolicy": "redirect-to-https"},
            "orderedCacheBehaviors": [{"pathPattern": "/_next/*", "viewerProtocolPolicy": "https-only"}],
            "origins": [{"originId": "server", "customOriginConfig": {"originProtocolPolicy": "https-only"}}]},
                 urn="urn:pulumi:prod::harbor::harbor:aws:Nextjs$aws:cloudfront/distribution:Distribution::cdn",
                 parent=site.urn),
        Resource("aws:apigatewayv2/domainName:DomainName", "api-domain", {
            "domainName": "api.getreggie.io", "domainNameConfiguration": {"securityPolicy": "TLS_1_2"}}),
        Resource("aws:apigatewayv2/api:Api", "http-api", {"corsConfiguration": {"allowOrigins": ["https://getreggie.io"]}}),
    ]


def named(resources: list[Resource], name: str) -> Resource:
    return next(r for r in resources if r.name == name)


def set_input(name: str, path: str, value: Any) -> Callable[[list[Resource]], None]:
    """A breakage: set inputs[path] (dotted) of the resource called ``name``."""

    def mutate(resources: list[Resource]) -> None:
        target: Any = named(resources, name).inputs
        *steps, last = path.split(".")
        for step in steps:
            target = target[int(step)] if step.isdigit() else target[step]
        target[last] = value

    return mutate


def drop(name: str) -> Callable[[list[Resource]], None]:
    return lambda resources: resources.remove(named(resources, name))


def set_attr(name: str, attribute: str, value: Any) -> Callable[[list[Resource]], None]:
    return lambda resources: setattr(named(resources, name), attribute, value)
