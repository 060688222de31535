"""Physical names: {app}-{stage}-{name} within every service's length and character rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.core.naming import NAME_RULES, physical_name

names = st.text(min_size=1, max_size=300)
stages = st.from_regex(r"[a-z][a-z0-9-]{0,23}", fullmatch=True)
kinds = st.sampled_from(sorted(NAME_RULES))


def test_short_names_are_app_stage_name():
    assert physical_name("harbor", "prod", "Table", "dynamodb.table") == "harbor-prod-Table"
    assert physical_name("harbor", "dev", "Jobs", "sqs.fifo-queue") == "harbor-dev-Jobs.fifo"


def test_bucket_names_are_lowercase_and_hyphenated():
    assert physical_name("harbor", "dev", "My_Uploads", "s3.bucket") == "harbor-dev-my-uploads"


@settings(max_examples=300, deadline=None)
@given(name=names, stage=stages, kind=kinds)
def test_every_name_fits_its_service(name, stage, kind):
    rule = NAME_RULES[kind]
    result = physical_name("harbor", stage, name, kind)
    assert len(result) <= rule.max_length
    body = result.removesuffix(rule.reserved_suffix)
    assert not rule.invalid.search(body), result
    assert result.endswith(rule.reserved_suffix)
    if rule.lowercase:
        assert body == body.lower() and "--" not in body
    if rule.must_start_with_letter:
        assert body[0].isalpha()


@settings(max_examples=200, deadline=None)
@given(name=names, stage=stages, kind=kinds)
def test_names_are_stable(name, stage, kind):
    assert physical_name("harbor", stage, name, kind) == physical_name("harbor", stage, name, kind)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(alphabet="abcdefghij", min_size=70, max_size=120), a=st.integers(0, 10**6))
def test_long_names_that_differ_only_at_the_end_stay_distinct(prefix, a):
    first = physical_name("harbor", "prod", f"{prefix}{a}", "lambda.function")
    second = physical_name("harbor", "prod", f"{prefix}{a + 1}", "lambda.function")
    assert len(first) == len(second) == 64
    assert first != second
    assert re.search(r"-[0-9a-f]{8}$", first)


def test_a_kept_suffix_survives_truncation():
    result = physical_name("harbor", "prod", "x" * 100, "s3.bucket", suffix="-abcd1234")
    assert result.endswith("-abcd1234") and len(result) <= 63


# -- Checked against AWS's own limits, written out here from AWS's documentation --------------
# Independent of components/core/naming.py on purpose: a wrong number there must fail here.
# kind: (longest name AWS accepts, the whole name AWS accepts as a regex, source)
_RDS_ID = r"[a-zA-Z](?:-?[a-zA-Z0-9]+)*"  # letter first, no trailing or doubled hyphen
AWS_NAME_LIMITS: dict[str, tuple[int, str, str]] = {
    "dynamodb.table": (255, r"[a-zA-Z0-9_.-]{3,255}",
                       "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html"),
    "s3.bucket": (63, r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
                  "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"),
    "lambda.function": (64, r"[a-zA-Z0-9_-]{1,64}",
                        "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (name alone: 64)"),
    "iam.role": (64, r"[\w+=,.@-]{1,64}", "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html"),
    "iam.policy": (128, r"[\w+=,.@-]{1,128}",
                   "https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html"),
    "sqs.queue": (80, r"[a-zA-Z0-9_-]{1,80}",
                  "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html"),
    # "The .fifo suffix counts towards the 80-character queue name quota."
    "sqs.fifo-queue": (80, r"[a-zA-Z0-9_-]{1,75}\.fifo",
                       "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html"),
    "sns.topic": (256, r"[a-zA-Z0-9_-]{1,256}", "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html"),
    "sns.fifo-topic": (256, r"[a-zA-Z0-9_-]{1,251}\.fifo",
                       "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html"),
    "rds.cluster": (63, _RDS_ID, "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html"),
    "rds.instance": (63, _RDS_ID, "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html"),
    "rds.proxy": (63, _RDS_ID, "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBProxy.html "
                  "(length from botocore's rds model: max 63)"),
    "rds.parameter-group": (255, _RDS_ID,
                            "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterParameterGroup.html"),
    "rds.subnet-group": (255, r"[a-zA-Z0-9 ._-]{1,255}",
                         "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBSubnetGroup.html"),
    "rds.snapshot": (255, _RDS_ID, "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html "
                     "(FinalDBSnapshotIdentifier)"),
    "logs.group": (512, r"[._\-/#A-Za-z0-9]{1,512}",
                   "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html"),
    "ec2.security-group": (255, r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}",
                           "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html"),
    "ec2.tag": (256, r".{1,256}", "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html (tag value)"),
    "events.rule": (64, r"[._\-A-Za-z0-9]{1,64}",
                    "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html"),
    "kms.alias": (256, r"[a-zA-Z0-9:/_-]{1,256}", "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html"),
    "secretsmanager.secret": (512, r"[a-zA-Z0-9/_+=.@-]{1,512}",
                              "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"),
    "ssm.parameter": (1011, r"[a-zA-Z0-9_.\-/]{1,1011}",
                      "https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html"),
    "scheduler.schedule": (64, r"[0-9a-zA-Z\-_.]{1,64}",
                           "https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html"),
    "ecr.repository": (256, r"(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
                       "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html"),
    "cloudwatch.alarm": (255, r"[ -~]{1,255}",
                         "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html"),
}
# Kinds AWS documents no length for (or that are not AWS names): the code's own caps stand.
WITHOUT_AWS_LIMIT = {"generic", "apigateway.api", "cloudfront.policy"}


def test_every_name_kind_has_an_aws_limit_written_out_here_or_is_listed_as_having_none():
    assert set(NAME_RULES) == set(AWS_NAME_LIMITS) | WITHOUT_AWS_LIMIT


@settings(max_examples=400, deadline=None)
@given(name=names, stage=stages, kind=st.sampled_from(sorted(AWS_NAME_LIMITS)),
       suffix=st.sampled_from(["", "-dlq", "-final", "-proxy"]))
def test_every_name_is_one_aws_accepts(name, stage, kind, suffix):
    longest, pattern, source = AWS_NAME_LIMITS[kind]
    result = physical_name("harbor", stage, name, kind, suffix)
    assert len(result) <= longest, (result, source)
    assert re.fullmatch(pattern, result), (result, source)
    if kind == "s3.bucket":
        # Prefixes and suffixes S3 reserves (same source).
        assert not result.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        assert not result.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))


@pytest.mark.parametrize(("kind", "limit"), [("sqs.fifo-queue", 80), ("sns.fifo-topic", 256)])
def test_fifo_names_that_would_pass_the_limit_with_fifo_are_fitted_inside_it(kind, limit):
    # "harbor-prod-" + name fills the limit exactly; ".fifo" must still fit inside it.
    name = "Q" * (limit - len("harbor-prod-"))
    for suffix in ("", "-dlq"):
        result = physical_name("harbor", "prod", name, kind, suffix)
        assert result.endswith(f"{suffix}.fifo") and len(result) == limit
    # One that fits with its suffix is kept whole.
    short = "Q" * (limit - len("harbor-prod-") - len(".fifo"))
    assert physical_name("harbor", "prod", short, kind) == f"harbor-prod-{short}.fifo"


@pytest.mark.parametrize("kind", sorted(AWS_NAME_LIMITS))
@pytest.mark.parametrize("name", ["A" * 1200, "Ab9-_. :/x" * 120, "é" * 300])
@pytest.mark.parametrize("suffix", ["", "-dlq"])
def test_long_names_are_cut_to_what_aws_accepts(kind, name, suffix):
    longest, pattern, source = AWS_NAME_LIMITS[kind]
    result = physical_name("harbor", "a-very-long-stage-name", name, kind, suffix)
    assert len(result) <= longest, (len(result), source)
    assert re.fullmatch(pattern, result), (result, source)
