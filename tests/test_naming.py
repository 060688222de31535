"""Physical names: {app}-{stage}-{name} within every service's length and character rules."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from components.naming import NAME_RULES, physical_name

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
