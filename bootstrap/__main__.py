"""harbor-bootstrap: run once per AWS account, before the first deploy from GitHub.

It creates what the workflows in .github/workflows need and nothing else:
GitHub's OIDC provider, one deploy role per GitHub environment (each fenced to its own
stacks, unable to create a role without the permissions boundary), the Pulumi state
bucket with its access logs, and one KMS key per environment for secrets. Its outputs
are named after the repository variables the workflows read (see README, "Deploy from GitHub").
"""

import json

import pulumi

from bootstrap.backend import StateBackend
from bootstrap.settings import load_current_settings
from components import Vpc, start_app
from components.aws.github_oidc import GithubOidc
from components.core.removal import destroy_guard

settings = load_current_settings()  # stops with one clear message on a wrong key
app = start_app(stage=settings.stage(pulumi.get_stack()))

# The roles come first: the bucket's policy and the keys' policies name them.
github = GithubOidc("Github", **settings.oidc_args())
backend = StateBackend(
    "Pulumi",
    bucket_name=settings.state_bucket_name,
    app=settings.app,
    deploy_access=github.deploy_access(),
    key_users=settings.key_users,
)
github.grant_state(backend.bucket_arn, backend.key_alias_pattern)

# Named as the repository variables the workflows read: paste each one in unchanged.
pulumi.export("AWS_REGION", settings.region)
pulumi.export("PULUMI_BACKEND_URL", backend.backend_url)
for environment, role_arn in github.role_arns.items():
    suffix = environment.upper().replace("-", "_")
    pulumi.export(f"AWS_ROLE_ARN_{suffix}", role_arn)
    pulumi.export(f"PULUMI_SECRETS_PROVIDER_{suffix}", backend.secrets_providers[environment])
if settings.preview_network:
    # Preview stages join this network instead of each taking a VPC (5 per region by default)
    # and an Elastic IP (5 per region) of their own.
    network = Vpc("PreviewNetwork", nat="ec2", nat_count=1, az_count=2)
    pulumi.export(
        "PREVIEW_SHARED_VPC",
        pulumi.Output.all(network.id, pulumi.Output.all(*network.private_subnet_ids),
                          pulumi.Output.all(*network.public_subnet_ids)).apply(
            lambda v: json.dumps({"id": v[0], "privateSubnetIds": v[1], "publicSubnetIds": v[2]})
        ),
    )
pulumi.export("oidcProviderArn", github.provider_arn)
pulumi.export("permissionsBoundaryArn", github.boundary_arn)
pulumi.export("stateKeyArn", backend.key_arn)
pulumi.export("stateAccessLogBucket", backend.log_bucket_name)

# Last: `pulumi destroy` of the bootstrap deletes nothing, whatever its flags.
destroy_guard()
