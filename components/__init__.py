"""SST-style AWS components for Python, on the Pulumi engine.

Start the app, then create components; each follows the stage's naming, tags,
removal policy and protection::

    from components import Bucket, Dynamo, start_app

    app = start_app()
    table = Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
"""

from components.aws.alarms import Alarms
from components.aws.api import ApiGatewayV2
from components.aws.bucket import Bucket
from components.aws.cognito import CognitoUserPool, CognitoUserPoolClient
from components.aws.container import ImageConfig
from components.aws.cron import Cron
from components.aws.dns import CloudflareDns, DnsAdapter, Route53Dns, dns_for_stage, validated_certificate
from components.aws.dynamo import Dynamo
from components.aws.function import Function, resolve_function
from components.aws.github_oidc import GithubOidc
from components.aws.nextjs import Nextjs
from components.aws.postgres import Postgres
from components.aws.queue import Queue
from components.aws.run_on_deploy import RunOnDeploy
from components.aws.secret import Secret, Secrets, SecretsMissingError, declare_secrets
from components.aws.topic import SnsTopic
from components.aws.vpc import Vpc
from components.core.base import Component, ComponentArgs, ComponentError
from components.core.context import App, current_app, start_app
from components.core.linking import Linkable, Permission

__all__ = [
    "Alarms",
    "ApiGatewayV2",
    "App",
    "Bucket",
    "CloudflareDns",
    "CognitoUserPool",
    "CognitoUserPoolClient",
    "Component",
    "ComponentArgs",
    "ComponentError",
    "Cron",
    "DnsAdapter",
    "Dynamo",
    "Function",
    "GithubOidc",
    "ImageConfig",
    "Linkable",
    "Nextjs",
    "Permission",
    "Postgres",
    "Queue",
    "Route53Dns",
    "RunOnDeploy",
    "Secret",
    "Secrets",
    "SecretsMissingError",
    "SnsTopic",
    "Vpc",
    "current_app",
    "declare_secrets",
    "dns_for_stage",
    "resolve_function",
    "start_app",
    "validated_certificate",
]
