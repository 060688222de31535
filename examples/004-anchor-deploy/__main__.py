"""Seed 004: multi-tenant DynamoDB tables (userId GSIs) and S3 buckets with lifecycle rules.

    infra plan --program examples/004-anchor-deploy --stage production
"""

import pulumi

from components import Bucket, Dynamo, start_app

app = start_app()  # anchor-deploy in ap-southeast-1; production retains, dev removes

# Names are anchor-deploy-<stage>-ProjectsTable without SST's random suffix: harbor's names are
# deterministic, so a second deploy and a rebuilt state find the same table.
projects = Dynamo(
    "ProjectsTable",
    fields={"projectId": "string", "userId": "string"},
    primary_index={"hash_key": "projectId"},
    global_indexes={"UserIdIndex": {"hash_key": "userId"}},
)
deployments = Dynamo(
    "DeploymentsTable",
    fields={"projectId": "string", "deploymentId": "string", "userId": "string"},
    primary_index={"hash_key": "projectId", "range_key": "deploymentId"},
    global_indexes={
        "DeploymentIdIndex": {"hash_key": "deploymentId"},
        "UserIdIndex": {"hash_key": "userId"},
    },
)

# Build artifacts expire after 90 days; logs go to Glacier at 30 days and Deep Archive at a year.
# Both abort unfinished multipart uploads after 7 days.
artifacts = Bucket(
    "ArtifactsBucket",
    lifecycle=[{"id": "expire-artifacts", "expiration_days": 90, "abort_incomplete_upload_days": 7}],
)
logs = Bucket(
    "LogsBucket",
    lifecycle=[
        {
            "id": "archive-logs",
            "transitions": [
                {"days": 30, "storage_class": "GLACIER"},
                {"days": 365, "storage_class": "DEEP_ARCHIVE"},
            ],
            "abort_incomplete_upload_days": 7,
        }
    ],
)

# The data access layer reads these as PROJECTS_TABLE and DEPLOYMENTS_TABLE.
pulumi.export("projectsTable", projects.name)
pulumi.export("deploymentsTable", deployments.name)
pulumi.export("artifactsBucket", artifacts.name)
pulumi.export("logsBucket", logs.name)
