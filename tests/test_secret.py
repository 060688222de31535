"""Secret: values from SSM as Pulumi secrets, one up-front check, placeholders only in dev."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components import ComponentError, Secret, SecretsMissingError, declare_secrets
from components.aws.secret import fallback_path, secret_path
from components.core.linking import link_data, link_statements
from infra.cli import main as infra_main
from infra.harness import ROOT, run_program
from infra.mocks import AwsMocks, MockContext

# The secrets __main__.py declares (seed 002).
APP_SECRETS = [
    "ClerkPublishableKey", "ClerkSecretKey", "ClerkWebhookSecret",
    "R2Endpoint", "R2AccessKeyId", "R2SecretAccessKey",
    "StripeSecretKey", "StripeWebhookSecret",
    "ResendApiKey", "DvlaApiKey", "SecretKey",
]


class RecordingMocks(AwsMocks):
    """AwsMocks that also keep every invoke and every resource the program asked for."""

    def __init__(self, context: MockContext) -> None:
        super().__init__(context)
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self.created: list[str] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        self.invokes.append((args.token, dict(args.args)))
        return super().call(args)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> Any:
        self.created.append(args.typ)
        return super().new_resource(args)


def store(stage: str, names: list[str], prefix: str = "real") -> dict[str, str]:
    return {secret_path("harbor", stage, n): f"{prefix}-{stage}-{n}" for n in names}


def resolved(output: pulumi.Output[Any], into: list[Any]) -> None:
    """Keep an output's value for the test to check once the program has finished."""
    output.apply(into.append)


# -- the up-front check -------------------------------------------------------------------------


def test_program_lacking_two_secrets_stops_with_one_message_naming_both_and_how_to_set_them():
    parameters = store("prod", [n for n in APP_SECRETS if n not in ("StripeSecretKey", "SecretKey")])
    mocks = RecordingMocks(MockContext(parameters=parameters))
    with pytest.raises(SecretsMissingError) as raised:
        run_program(ROOT, "prod", mocks=mocks)

    message = str(raised.value)
    assert isinstance(raised.value, pulumi.RunError)  # Pulumi shows it without a traceback
    assert message.startswith("2 secrets are not set for stage 'prod'")
    assert "infra secret set StripeSecretKey --stage prod" in message
    assert "infra secret set SecretKey --stage prod" in message
    assert raised.value.missing == ["StripeSecretKey", "SecretKey"]
    # Nothing but the AWS provider exists when the check stops the program.
    assert set(mocks.created) <= {"pulumi:providers:aws"}


def test_check_lists_names_without_decrypting_any_value():
    mocks = RecordingMocks(MockContext(parameters=store("prod", APP_SECRETS)))
    run_program(ROOT, "prod", mocks=mocks)
    listings = [a for token, a in mocks.invokes if token == "aws:ssm/getParametersByPath:getParametersByPath"]
    assert [a["path"] for a in listings] == ["/harbor/prod", "/harbor/.fallback"]
    assert all(a["withDecryption"] is False for a in listings)


def test_with_every_secret_set_the_plan_shows_them_only_as_secrets():
    parameters = store("prod", APP_SECRETS)
    plan = run_program(ROOT, "prod", context=MockContext(parameters=parameters))
    secrets = plan.of_type("harbor:sst:Secret")
    assert sorted(s.name for s in secrets) == sorted(APP_SECRETS)
    assert "real-prod-" not in json.dumps(plan.to_json())


@pytest.mark.usefixtures("cli_plans")
def test_infra_plan_json_never_prints_a_secret_value(capsys):
    assert infra_main(["plan", "--stage", "prod", "--json"]) == 0
    printed = capsys.readouterr().out
    assert '"harbor:sst:Secret"' in printed
    assert "mock-value-of-" not in printed  # the offline store's stand-in values


def test_a_resource_input_and_an_export_fed_by_a_secret_show_only_secret(build):
    def body() -> None:
        key = Secret("StripeSecretKey")
        aws.ssm.Parameter("copy", type="SecureString", value=key.value)
        pulumi.export("stripeKey", key.value)

    plan = build(body, stage="prod", context=MockContext(parameters=store("prod", ["StripeSecretKey"])))
    assert plan.one("aws:ssm/parameter:Parameter").inputs["value"] == "[secret]"
    assert plan.outputs["stripeKey"] == "[secret]"
    assert "real-prod-StripeSecretKey" not in json.dumps(plan.to_json())


def test_value_is_a_secret_output_holding_the_stage_value(build):
    seen: list[Any] = []

    def body() -> None:
        key = Secret("StripeSecretKey")
        resolved(key.value, seen)
        pulumi.export("check", key.value)

    plan = build(body, stage="prod", context=MockContext(parameters=store("prod", ["StripeSecretKey"])))
    assert seen == ["real-prod-StripeSecretKey"]
    assert plan.outputs["check"] == "[secret]"


# -- where a value comes from -----------------------------------------------------------------


def test_stage_value_wins_over_the_fallback(build):
    found: dict[str, Any] = {}
    parameters = {
        secret_path("harbor", "staging", "DvlaApiKey"): "staging-value",
        fallback_path("harbor", "DvlaApiKey"): "shared-value",
    }

    def body() -> None:
        found["secret"] = secret = Secret("DvlaApiKey")
        resolved(secret.value, found.setdefault("values", []))

    build(body, stage="staging", context=MockContext(parameters=parameters))
    assert found["secret"].source == "/harbor/staging/DvlaApiKey"
    assert found["values"] == ["staging-value"]


def test_stage_without_its_own_value_reads_the_fallback(build):
    found: dict[str, Any] = {}

    def body() -> None:
        found["secret"] = secret = Secret("DvlaApiKey")
        resolved(secret.value, found.setdefault("values", []))

    build(body, stage="alice", context=MockContext(parameters={"/harbor/.fallback/DvlaApiKey": "shared"}))
    assert found["secret"].source == "/harbor/.fallback/DvlaApiKey"
    assert found["values"] == ["shared"]


def test_placeholder_stands_in_on_a_dev_stage(build):
    found: list[Any] = []
    build(
        lambda: resolved(Secret("ResendApiKey", placeholder="re_placeholder").value, found),
        stage="dev",
        context=MockContext(parameters={}),
    )
    assert found == ["re_placeholder"]


@pytest.mark.parametrize(("stage", "settings"), [("prod", {}), ("staging", {}), ("alice", {"protect": True})])
def test_placeholder_never_stands_in_on_shared_or_protected_stages(build, stage, settings):
    with pytest.raises(SecretsMissingError, match=f"infra secret set ResendApiKey --stage {stage}"):
        build(
            lambda: Secret("ResendApiKey", placeholder="re_placeholder"),
            stage=stage,
            context=MockContext(parameters={}),
            **settings,
        )


def test_declare_secrets_reports_every_missing_one_before_creating_any(build):
    created: list[Any] = []

    def body() -> None:
        created.append(declare_secrets(["AKey", "BKey", "CKey"], placeholders={"CKey": "c"}))

    with pytest.raises(SecretsMissingError) as raised:
        build(body, stage="dev", context=MockContext(parameters={}))
    assert raised.value.missing == ["AKey", "BKey"]
    assert created == []


def test_declared_secrets_are_reachable_by_name_and_attribute(build):
    found: dict[str, Any] = {}

    def body() -> None:
        found["secrets"] = declare_secrets(["AKey", "B_KEY"])

    build(body, stage="dev")  # the offline store: every declared secret is set
    secrets = found["secrets"]
    assert list(secrets) == ["AKey", "B_KEY"]
    assert secrets.B_KEY is secrets["B_KEY"]
    with pytest.raises(AttributeError, match="no secret 'Nope' was declared"):
        _ = secrets.Nope


# -- linking ------------------------------------------------------------------------------------


def test_link_carries_the_value_as_sst_secret_and_grants_nothing(build):
    data: list[Any] = []
    statements: list[Any] = []

    def body() -> None:
        secret = Secret("StripeSecretKey")
        resolved(link_data([secret]), data)
        resolved(link_statements([secret]), statements)

    build(body, stage="prod", context=MockContext(parameters=store("prod", ["StripeSecretKey"])))
    assert data == [{"StripeSecretKey": {"value": "real-prod-StripeSecretKey", "type": "sst.sst.Secret"}}]
    assert statements == [[]]


def test_underscore_names_keep_their_name_for_the_handler(build):
    found: dict[str, Any] = {}
    build(lambda: found.setdefault("s", Secret("STRIPE_KEY")), stage="dev")
    assert found["s"].link_name == "STRIPE_KEY"


# -- mistakes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad-name", "9Lives", "with space", ""])
def test_invalid_secret_names_are_refused_with_the_rule(build, name):
    with pytest.raises(ComponentError, match="letters, digits or underscores"):
        build(lambda: Secret(name), stage="dev")


def test_placeholder_for_an_undeclared_secret_is_refused(build):
    with pytest.raises(ComponentError, match="placeholders for undeclared secrets: Typo"):
        build(lambda: declare_secrets(["AKey"], placeholders={"Typo": "x"}), stage="dev")


def test_empty_placeholder_is_refused(build):
    with pytest.raises(ComponentError, match="placeholder must not be empty"):
        build(lambda: Secret("AKey", placeholder=""), stage="dev")


def test_mocked_ssm_answers_a_missing_parameter_with_parameter_not_found(build):
    with pytest.raises(Exception, match="ParameterNotFound"):
        build(lambda: aws.ssm.get_parameter(name="/harbor/dev/Nope"), stage="dev", context=MockContext(parameters={}))


def test_a_preview_stage_uses_placeholders_and_names_the_fallback_for_the_rest():
    # A pr-<number> stage is a development stage: placeholders stand in, and only SecretKey
    # (which has none) must be set once, in the fallback every preview stage reads.
    mocks = RecordingMocks(MockContext(parameters={}))
    with pytest.raises(SecretsMissingError) as raised:
        run_program(ROOT, "pr-12", mocks=mocks)
    assert raised.value.missing == ["SecretKey"]
    message = str(raised.value)
    assert "infra secret set SecretKey --fallback" in message and "--stage pr-12" not in message
    assert "preview stages (pr-<number>) read the fallback" in message
    plan = run_program(ROOT, "pr-12", mocks=RecordingMocks(MockContext(
        parameters={fallback_path("harbor", "SecretKey"): "shared"})))
    assert plan.outputs["tableName"] == "harbor-pr-12-Table"
