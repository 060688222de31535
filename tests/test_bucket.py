"""Bucket: private, encrypted, TLS-only, versioned when protected, lifecycle and CORS."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import Bucket, ComponentError
from components.linking import link_statements


def children(plan, kind: str):
    return plan.one(f"aws:s3/{kind}")


def test_bucket_blocks_all_public_access(build):
    inputs = children(build(lambda: Bucket("Uploads")), "bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(inputs[k] is True for k in (
        "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))


def test_bucket_is_encrypted_and_owner_enforced(build):
    plan = build(lambda: Bucket("Uploads"))
    rule = children(plan, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs
    assert rule["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    ownership = children(plan, "bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_bucket_policy_denies_requests_without_tls(build):
    plan = build(lambda: Bucket("Uploads"))
    policy = json.loads(children(plan, "bucketPolicy:BucketPolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    bucket = plan.one("aws:s3/bucket:Bucket").inputs["bucket"]
    assert statement["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def test_bucket_name_is_app_stage_name_with_an_account_hash(build):
    name = build(lambda: Bucket("Uploads"), stage="staging").one("aws:s3/bucket:Bucket").inputs["bucket"]
    assert name.startswith("harbor-staging-uploads-") and len(name) <= 63


def test_versioning_follows_protection(build):
    assert build(lambda: Bucket("Uploads"), stage="prod").of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert not build(lambda: Bucket("Uploads"), stage="dev").of_type("aws:s3/bucketVersioning:BucketVersioning")
    forced = build(lambda: Bucket("Uploads", versioning=True), stage="dev")
    assert forced.one("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }


def test_only_removing_stages_let_destroy_empty_the_bucket(build):
    assert build(lambda: Bucket("Uploads"), stage="dev").one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is True
    assert build(lambda: Bucket("Uploads"), stage="prod").one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is False


def test_lifecycle_rules_of_seed_004(build):
    def body() -> None:
        Bucket(
            "Logs",
            lifecycle=[{"id": "archive", "transitions": [
                {"days": 30, "storage_class": "GLACIER"}, {"days": 365, "storage_class": "DEEP_ARCHIVE"}]}],
        )

    (rule,) = build(body).one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["transitions"] == [
        {"days": 30, "storageClass": "GLACIER"}, {"days": 365, "storageClass": "DEEP_ARCHIVE"}]
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


def test_expiration_rule(build):
    plan = build(lambda: Bucket("Artifacts", lifecycle=[{"id": "expire", "expiration_days": 90, "prefix": "builds/"}]))
    (rule,) = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["expiration"] == {"days": 90} and rule["filter"] == {"prefix": "builds/"}


def test_cors_rules(build):
    plan = build(lambda: Bucket("Uploads", cors=[{"allowed_origins": ["https://getreggie.io"],
                                                   "allowed_methods": ["GET", "PUT"]}]))
    (rule,) = plan.one("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration").inputs["corsRules"]
    assert rule["allowedOrigins"] == ["https://getreggie.io"] and rule["allowedMethods"] == ["GET", "PUT"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lifecycle": [{"id": "ia", "transitions": [{"days": 10, "storage_class": "STANDARD_IA"}]}]},
         "after 30 days at the earliest"),
        ({"lifecycle": [{"id": "x", "expiration_days": 30, "transitions": [{"days": 60, "storage_class": "GLACIER"}]}]},
         "comes after expiry at day 30"),
        ({"lifecycle": [{"id": "a", "expiration_days": 1}, {"id": "a", "expiration_days": 2}]},
         "lifecycle rule ids must be unique"),
        ({"lifecycle": [{"id": "noop", "abort_incomplete_upload_days": None}]}, "does nothing"),
        ({"public": True}, "public is not an argument of this component"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(build, kwargs, message):
    with pytest.raises(ComponentError) as error:
        build(lambda: Bucket("Uploads", **kwargs))
    assert "Bucket 'Uploads'" in str(error.value) and message in str(error.value)


def test_link_grants_object_access_on_this_bucket_only(build):
    def body() -> None:
        pulumi.export("statements", link_statements([Bucket("Uploads")]))

    statements = build(body).outputs["statements"]
    actions = {a for s in statements for a in s["Action"]}
    resources = {r for s in statements for r in s["Resource"]}
    assert "s3:*" not in actions and {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert all(r.startswith("arn:aws:s3:::harbor-dev-uploads-") for r in resources)
    assert len(resources) == 2  # the bucket and its objects, nothing else
