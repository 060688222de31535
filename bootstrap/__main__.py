"""harbor-bootstrap: run once per AWS account, before the first deploy from GitHub.

It creates what the workflows in .github/workflows need and nothing else:
GitHub's OIDC provider, one deploy role per GitHub environment, the Pulumi state
bucket and the KMS key for secrets. Its outputs are named after the repository
variables the workflows read (see README, "Deploy").
"""

import pulumi

from bootstrap.backend import StateBackend
from bootstrap.settings import load_current_settings
from components import start_app
from components.github_oidc import GithubOidc

settings = load_current_settings()  # stops with one clear message on a wrong key
app = start_app(stage=settings.stage(pulumi.get_stack()))

backend = StateBackend("Pulumi", bucket_name=settings.state_bucket_name)
github = GithubOidc(
    "Github",
    **settings.oidc_args(),
    state_bucket_arn=backend.bucket_arn,
    secrets_key_arn=backend.key_arn,
)

# Named as the repository variables the workflows read: paste each one in unchanged.
pulumi.export("AWS_REGION", settings.region)
pulumi.export("PULUMI_BACKEND_URL", backend.backend_url)
pulumi.export("PULUMI_SECRETS_PROVIDER", backend.secrets_provider)
for environment, role_arn in github.role_arns.items():
    pulumi.export(f"AWS_ROLE_ARN_{environment.upper().replace('-', '_')}", role_arn)
pulumi.export("oidcProviderArn", github.provider_arn)
pulumi.export("secretsKeyArn", backend.key_arn)
