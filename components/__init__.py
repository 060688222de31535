"""SST-style AWS components for Python, on the Pulumi engine.

Start the app, then create components; each follows the stage's naming, tags,
removal policy and protection::

    from components import Bucket, Dynamo, start_app

    app = start_app()
    table = Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
"""

from components.alarms import Alarms
from components.api import ApiGatewayV2
from components.base import Component, ComponentArgs, ComponentError
from components.bucket import Bucket
from components.cognito import CognitoUserPool, CognitoUserPoolClient
from components.container import ImageConfig
from components.context import App, current_app, start_app
from components.cron import Cron
from components.dns import CloudflareDns, DnsAdapter, Route53Dns, dns_for_stage, validated_certificate
from components.dynamo import Dynamo
from components.function import Function, resolve_function
from components.github_oidc import GithubOidc
from components.linking import Linkable, Permission
from components.nextjs import Nextjs
from components.postgres import Postgres
from components.queue import Queue
from components.run_on_deploy import RunOnDeploy
from components.secret import Secret, Secrets, SecretsMissingError, declare_secrets
from components.topic import SnsTopic
from components.vpc import Vpc

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
