"""Bucket: private, encrypted, TLS-only, versioned when protected, lifecycle and CORS."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import Bucket, ComponentError, Queue, SnsTopic
from components.core.linking import link_statements


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
        ({"lifecycle": [{"id": "neg", "transitions": [{"days": -1, "storage_class": "GLACIER"}]}]},
         "lifecycle.0.transitions.0.days Input should be greater than or equal to 0"),
        ({"lifecycle": [{"id": "neg", "expiration_days": -5}]},
         "lifecycle.0.expiration_days Input should be greater than or equal to 1"),
        # S3 keeps objects 30 days in Standard-IA / One Zone-IA before moving them on.
        ({"lifecycle": [{"id": "chain", "transitions": [{"days": 30, "storage_class": "STANDARD_IA"},
                                                        {"days": 59, "storage_class": "GLACIER"}]}]},
         "objects stay 30 days in STANDARD_IA before S3 moves them on; move the GLACIER transition "
         "to day 60 or later (got 59)"),
        ({"lifecycle": [{"id": "chain", "transitions": [{"days": 45, "storage_class": "ONEZONE_IA"},
                                                        {"days": 60, "storage_class": "DEEP_ARCHIVE"}]}]},
         "objects stay 30 days in ONEZONE_IA before S3 moves them on; move the DEEP_ARCHIVE "
         "transition to day 75 or later (got 60)"),
        # Transitions only go down S3's waterfall.
        ({"lifecycle": [{"id": "up", "transitions": [{"days": 30, "storage_class": "GLACIER"},
                                                     {"days": 400, "storage_class": "STANDARD_IA"}]}]},
         "S3 cannot move objects from GLACIER to STANDARD_IA; from GLACIER they can move to DEEP_ARCHIVE"),
        ({"lifecycle": [{"id": "oz", "transitions": [{"days": 30, "storage_class": "ONEZONE_IA"},
                                                     {"days": 90, "storage_class": "GLACIER_IR"}]}]},
         "S3 cannot move objects from ONEZONE_IA to GLACIER_IR"),
        ({"lifecycle": [{"id": "it", "transitions": [{"days": 0, "storage_class": "INTELLIGENT_TIERING"},
                                                     {"days": 30, "storage_class": "STANDARD_IA"}]}]},
         "S3 cannot move objects from INTELLIGENT_TIERING to STANDARD_IA"),
        ({"public": True}, "public is not an argument of this component"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(build, kwargs, message):
    with pytest.raises(ComponentError) as error:
        build(lambda: Bucket("Uploads", **kwargs))
    assert "Bucket 'Uploads'" in str(error.value) and message in str(error.value)


def test_chained_transitions_at_the_minimum_gaps_are_accepted(build):
    transitions = [{"days": 30, "storage_class": "STANDARD_IA"}, {"days": 60, "storage_class": "GLACIER"},
                   {"days": 150, "storage_class": "DEEP_ARCHIVE"}]
    plan = build(lambda: Bucket("Logs", lifecycle=[{"id": "chain", "transitions": transitions}]))
    (rule,) = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert [(t["days"], t["storageClass"]) for t in rule["transitions"]] == [
        (30, "STANDARD_IA"), (60, "GLACIER"), (150, "DEEP_ARCHIVE")]


def test_leaving_a_class_before_its_minimum_storage_duration_is_a_warning(build, caplog):
    import logging

    caplog.set_level(logging.WARNING)
    rule = {"id": "short", "expiration_days": 100,
            "transitions": [{"days": 0, "storage_class": "GLACIER_IR"}, {"days": 60, "storage_class": "GLACIER"}]}
    build(lambda: Bucket("Logs", lifecycle=[rule]))
    warnings = sorted(r.getMessage() for r in caplog.records if "Bucket 'Logs'" in r.getMessage())
    assert warnings == [
        "Bucket 'Logs': lifecycle rule 'short': expiry at day 100 leaves GLACIER after 40 days; "
        "S3 bills GLACIER for at least 90 days",
        "Bucket 'Logs': lifecycle rule 'short': the move to GLACIER at day 60 leaves GLACIER_IR after "
        "60 days; S3 bills GLACIER_IR for at least 90 days",
    ]


def test_link_grants_object_access_on_this_bucket_only(build):
    def body() -> None:
        pulumi.export("statements", link_statements([Bucket("Uploads")]))

    statements = build(body).outputs["statements"]
    actions = {a for s in statements for a in s["Action"]}
    resources = {r for s in statements for r in s["Resource"]}
    assert "s3:*" not in actions and {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert all(r.startswith("arn:aws:s3:::harbor-dev-uploads-") for r in resources)
    assert len(resources) == 2  # the bucket and its objects, nothing else


# -- event notifications ------------------------------------------------------------------------

NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
BUCKET_ARN_PREFIX = "arn:aws:s3:::harbor-dev-uploads-"


def test_a_function_subscriber_is_invoked_only_for_this_bucket_and_after_its_permission(build):
    def body() -> None:
        Bucket("Uploads").subscribe("Thumbs", "app/functions/worker.handler", filter_prefix="images/",
                                    filter_suffix=".jpg", timeout=60)

    plan = build(body)

    permission = plan.one("aws:lambda/permission:Permission")
    assert permission.inputs["principal"] == "s3.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["sourceArn"].startswith(BUCKET_ARN_PREFIX)
    assert permission.inputs["sourceAccount"] == "123456789012"
    assert permission.inputs["function"] == "harbor-dev-UploadsThumbs"
    notification = plan.one(NOTIFICATION)
    assert notification.inputs["lambdaFunctions"] == [{
        "id": "Thumbs",
        "lambdaFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-UploadsThumbs",
        "events": ["s3:ObjectCreated:*"],
        "filterPrefix": "images/",
        "filterSuffix": ".jpg",
    }]
    assert "queues" not in notification.inputs and "topics" not in notification.inputs
    assert permission.urn in notification.dependencies  # S3 checks the grant when it saves the config
    assert plan.one("aws:lambda/function:Function").inputs["timeout"] == 60


def test_queue_and_topic_subscribers_join_one_configuration_with_their_own_policies(build):
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"

    def body() -> None:
        uploads = Bucket("Uploads")
        uploads.subscribe("Removed", Queue("Removals"), events=["s3:ObjectRemoved:*"])
        uploads.subscribe("Created", SnsTopic("Uploaded", kms_key_arn=key), filter_prefix="in/")

    plan = build(body)

    notification = plan.one(NOTIFICATION)
    (queue,) = notification.inputs["queues"]
    assert queue["queueArn"] == "arn:aws:sqs:us-east-1:123456789012:harbor-dev-Removals"
    assert queue["events"] == ["s3:ObjectRemoved:*"] and queue["id"] == "Removed"
    (topic,) = notification.inputs["topics"]
    assert topic["topicArn"] == "arn:aws:sns:us-east-1:123456789012:harbor-dev-Uploaded"
    assert topic["filterPrefix"] == "in/"
    queue_policy = plan.one("aws:sqs/queuePolicy:QueuePolicy")
    (allow,) = [s for s in json.loads(queue_policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"].startswith(BUCKET_ARN_PREFIX)
    topic_policy = plan.one("aws:sns/topicPolicy:TopicPolicy")
    (publish,) = [s for s in json.loads(topic_policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "s3.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert publish["Resource"] == "arn:aws:sns:us-east-1:123456789012:harbor-dev-Uploaded"
    assert {queue_policy.urn, topic_policy.urn} <= set(notification.dependencies)


def test_a_bucket_without_subscribers_has_no_notification_configuration(build):
    assert build(lambda: Bucket("Uploads")).of_type(NOTIFICATION) == []


@pytest.mark.parametrize(
    ("target", "kwargs", "problem"),
    [
        (lambda: Queue("Jobs", fifo=True), {}, "S3 cannot notify FIFO queues"),
        (lambda: SnsTopic("Events", fifo=True), {}, "S3 cannot notify FIFO topics"),
        (lambda: SnsTopic("Events"), {}, "AWS managed key alias/aws/sns"),
        (lambda: "app/functions/worker.handler", {"events": ["s3:ObjectCreated"]}, "is not an S3 event type"),
        (lambda: "app/functions/worker.handler", {"events": "s3:ObjectCreated:*"}, "events must be a non-empty list"),
        (lambda: 42, {}, "needs a Function, a handler string, a Queue or an SnsTopic"),
    ],
)
def test_destinations_s3_refuses_are_refused_at_plan_time(build, target, kwargs, problem):
    with pytest.raises(ComponentError, match=problem):
        build(lambda: Bucket("Uploads").subscribe("Sub", target(), **kwargs))


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ({}, {}, True),
        ({"filter_prefix": "a/"}, {"filter_prefix": "a/b/"}, True),
        ({"filter_prefix": "a/"}, {"filter_prefix": "b/"}, False),
        ({"filter_suffix": ".jpg"}, {"filter_suffix": ".png"}, False),
        ({"events": ["s3:ObjectCreated:*"]}, {"events": ["s3:ObjectCreated:Put"]}, True),
        ({"events": ["s3:ObjectCreated:*"]}, {"events": ["s3:ObjectRemoved:*"]}, False),
    ],
)
def test_overlapping_subscriptions_are_refused_like_s3_does(build, first, second, overlap):
    def body() -> None:
        uploads = Bucket("Uploads")
        uploads.subscribe("One", "app/functions/worker.handler", **first)
        uploads.subscribe("Two", "app/functions/worker.handler", **second)

    if overlap:
        with pytest.raises(ComponentError, match="subscriptions 'One' and 'Two' overlap"):
            build(body)
    else:
        assert len(build(body).one(NOTIFICATION).inputs["lambdaFunctions"]) == 2


LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def test_a_versioned_bucket_expires_old_versions_with_the_users_expiry(build):
    plan = build(lambda: Bucket("Artifacts", versioning=True,
                                lifecycle=[{"id": "expire", "expiration_days": 90}]))
    (rule,) = plan.one(LIFECYCLE).inputs["rules"]
    # The expiry hides current objects behind a delete marker; their data goes 90 days later,
    # and S3 removes a marker left with nothing behind it (a Days expiry implies that cleanup).
    assert rule["expiration"] == {"days": 90}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 90}


def test_a_versioned_bucket_moves_old_versions_like_current_ones_and_cleans_markers(build):
    plan = build(lambda: Bucket("Logs", versioning=True, lifecycle=[{
        "id": "archive", "noncurrent_expiration_days": 400,
        "transitions": [{"days": 30, "storage_class": "GLACIER"}, {"days": 365, "storage_class": "DEEP_ARCHIVE"}],
    }]))
    (rule,) = plan.one(LIFECYCLE).inputs["rules"]
    assert rule["noncurrentVersionTransitions"] == [
        {"noncurrentDays": 30, "storageClass": "GLACIER"}, {"noncurrentDays": 365, "storageClass": "DEEP_ARCHIVE"}]
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 400}
    assert rule["expiration"] == {"expiredObjectDeleteMarker": True}


def test_an_unversioned_bucket_gets_only_the_users_rules(build):
    plan = build(lambda: Bucket("Artifacts", versioning=False, lifecycle=[{"id": "expire", "expiration_days": 90}]))
    (rule,) = plan.one(LIFECYCLE).inputs["rules"]
    assert set(rule) == {"id", "status", "filter", "expiration", "abortIncompleteMultipartUpload"}


def test_prod_buckets_of_the_application_clean_up_their_old_versions(plan_stage):
    plan = plan_stage("prod")
    rules = {r["id"]: r for c in plan.of_type(LIFECYCLE) for r in c.inputs["rules"]}
    assert rules["expire-artifacts"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    assert rules["archive-logs"]["expiration"] == {"expiredObjectDeleteMarker": True}
    assert [t["storageClass"] for t in rules["archive-logs"]["noncurrentVersionTransitions"]] == [
        "GLACIER", "DEEP_ARCHIVE"]
