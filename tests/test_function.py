"""Function: packaging, defaults per stage, IAM from links, the environment limit, sst-sdk round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pytest
from conftest import APP, stage_config

from components import ComponentError, Dynamo, Permission
from components.aws.function import Function, resolve_function
from components.core.base import Component
from infra.harness import SECRET, run_mocked

FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROOT = Path(__file__).resolve().parent.parent
HANDLER = "app/functions/items.create"


def table() -> Dynamo:
    return Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})


def run(body, stage: str = "dev", **settings: Any):
    def program() -> None:
        from components import start_app

        start_app()
        body()

    return run_mocked(program, APP, stage, stage_config(stage, **settings))


def test_defaults_are_python_on_arm64_with_1024_mb_and_20_seconds(build):
    inputs = build(lambda: Function("Create", handler=HANDLER)).one(FUNCTION).inputs
    assert inputs["runtime"] == "python3.12"
    assert inputs["architectures"] == ["arm64"]
    assert inputs["memorySize"] == 1024 and inputs["timeout"] == 20
    assert inputs["handler"] == "items.create"
    assert inputs["name"] == "harbor-dev-Create"


@pytest.mark.parametrize(("stage", "days"), [("dev", 7), ("staging", 14), ("prod", 30)])
def test_log_group_has_the_stages_retention_and_exists_before_the_function(plan_stage, build, stage, days):
    settings = {"dev": {"logRetentionDays": 7}, "staging": {"logRetentionDays": 14},
                "prod": {"logRetentionDays": 30}}[stage]
    plan = build(lambda: Function("Create", handler=HANDLER), stage=stage, **settings)
    group = plan.one(LOG_GROUP)
    function = plan.one(FUNCTION)
    assert group.inputs["name"] == f"/aws/lambda/harbor-{stage}-Create"
    assert group.inputs["retentionInDays"] == days
    assert group.urn in function.dependencies
    assert function.inputs["loggingConfig"]["logGroup"] == group.inputs["name"]


def test_role_has_only_basic_execution_without_links(build):
    plan = build(lambda: Function("Create", handler=HANDLER))
    assert [a.inputs["policyArn"] for a in plan.of_type(ATTACHMENT)] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    assert plan.of_type(ROLE_POLICY) == []
    assume = json.loads(plan.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert assume["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_links_grant_exactly_the_linked_resources_actions_on_their_arns(build):
    def body():
        Function("Create", handler=HANDLER, link=[table()],
                 permissions=[Permission(["ses:SendEmail"], ["arn:aws:ses:us-east-1:123456789012:identity/x"])])

    policy = json.loads(build(body).one(ROLE_POLICY).inputs["policy"])
    statements = policy["Statement"]
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/harbor-dev-Table"
    assert statements[0]["Resource"] == [arn] and "dynamodb:PutItem" in statements[0]["Action"]
    assert statements[1]["Resource"] == [f"{arn}/index/*"]
    assert statements[2] == {"Effect": "Allow", "Action": ["ses:SendEmail"],
                             "Resource": ["arn:aws:ses:us-east-1:123456789012:identity/x"]}
    for statement in statements:
        assert "*" not in statement["Resource"]
        assert not any(action == "*" or action.endswith(":*") for action in statement["Action"])


def test_links_travel_in_the_archive_and_only_three_variables_in_the_environment(build):
    plan = build(lambda: Function("Create", handler=HANDLER, link=[table()], environment={"STAGE_NOTE": "x"}))
    inputs = plan.one(FUNCTION).inputs
    variables = inputs["environment"]["variables"]
    assert set(variables) == {"STAGE_NOTE", "SST_KEY", "SST_KEY_FILE", "SST_RESOURCE_App"}
    assert variables["SST_KEY_FILE"] == "/var/task/resource.enc"
    assert json.loads(variables["SST_RESOURCE_App"]) == {"name": "harbor", "stage": "dev"}
    with zipfile.ZipFile(ROOT / inputs["code"]["archive"]) as zf:
        assert "resource.enc" in zf.namelist() and "items.py" in zf.namelist()
        assert b"harbor-dev-Table" not in zf.read("resource.enc")


READER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import reader
print(json.dumps(reader.main({}, None)))
"""


def test_packaged_handler_reads_its_links_with_sst_sdk(tmp_path, monkeypatch):
    """The real sst-sdk, in a fresh interpreter, reads the link data the function carries."""
    monkeypatch.chdir(tmp_path)
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "reader.py").write_text(
        "from sst import Resource\n\n"
        "def main(event, context):\n"
        "    return {'table': Resource.Table.name, 'app': Resource.App.stage,\n"
        "            'other': Resource.Other.name}\n"
    )

    def body():
        other = Function("Other", handler="handlers/reader.main")
        Function("Reader", handler="handlers/reader.main", link=[table(), other])

    plan = run(body, stage="staging")
    function = plan.one(FUNCTION, "Reader-function")
    task = tmp_path / "task"
    with zipfile.ZipFile(tmp_path / function.inputs["code"]["archive"]) as zf:
        zf.extractall(task)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SST_")}
    env.update(function.inputs["environment"]["variables"])
    env["SST_KEY_FILE"] = str(task / "resource.enc")  # /var/task on Lambda
    result = subprocess.run([sys.executable, "-c", READER, str(task)], env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {
        "table": "harbor-staging-Table", "app": "staging", "other": "harbor-staging-Other"
    }


class SecretThing(Component):
    """A linkable whose value is a secret Output, like a Secret component."""

    type_token: ClassVar[str] = "harbor:test:SecretThing"
    link_name = "ApiKey"
    link_type = "sst.sst.Secret"

    def link_properties(self):
        return {"value": pulumi.Output.secret("sk_live_123")}

    def link_permissions(self):
        return []


def test_secret_link_values_make_the_archive_and_environment_secret(build):
    plan = build(lambda: Function("Create", handler=HANDLER, link=[SecretThing("Key")]))
    inputs = plan.one(FUNCTION).inputs
    assert inputs["code"] == SECRET
    assert inputs["environment"] == SECRET
    assert inputs["sourceCodeHash"] == SECRET
    assert "sk_live_123" not in json.dumps([r.inputs for r in plan.resources])


def test_oversized_environment_is_refused_naming_the_biggest_variables(build):
    environment = {"SMALL": "x", "HUGE_CERT": "c" * 3000, "BIG_JSON": "j" * 1200}
    with pytest.raises(ComponentError, match=r"HUGE_CERT \(3009 bytes\), BIG_JSON \(1208 bytes\)"):
        build(lambda: Function("Create", handler=HANDLER, environment=environment))


def planned_environment_bytes(plan) -> int:
    variables = plan.one(FUNCTION).inputs["environment"]["variables"]
    assert set(variables) >= {"SST_KEY", "SST_KEY_FILE", "SST_RESOURCE_App"}
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in variables.items())


def test_environment_limit_counts_utf8_bytes_and_the_link_variables(build):
    # Lambda: "The total size of the set doesn't exceed 4 KB" (keys and values, in bytes).
    # The link variables take 135 bytes for harbor/dev, leaving 3961: "V" plus 1980 two-byte
    # characters fill the 4096 bytes exactly; one more byte is refused, though only
    # 1982 characters are set.
    fits = "é" * 1980
    plan = build(lambda: Function("Create", handler=HANDLER, environment={"V": fits}))
    assert planned_environment_bytes(plan) == 4096
    with pytest.raises(ComponentError, match=r"environment is 3962 bytes and Lambda allows 3961"):
        build(lambda: Function("Create", handler=HANDLER, environment={"V": fits + "x"}))


def test_environment_values_known_only_at_deploy_are_counted_with_the_link_variables(build):
    def body(extra: str):
        table = Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        value = table.name.apply(lambda name: "é" * ((3960 - len(name)) // 2) + name + extra)
        return Function("Create", handler=HANDLER, environment={"V": value}, link=[table])

    name = "harbor-dev-Table"  # even length, so the padding fills the bytes exactly
    assert len(name) % 2 == 0
    plan = build(lambda: body(""))
    assert planned_environment_bytes(plan) == 4096
    with pytest.raises(ComponentError, match=r"environment is 3962 bytes"):
        build(lambda: body("x"))


def test_many_links_never_grow_the_environment(build):
    def body():
        tables = [Dynamo(f"Table{i}", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
                  for i in range(40)]
        Function("Create", handler=HANDLER, link=tables, environment={"NOTE": "n" * 3500})

    variables = build(body).one(FUNCTION).inputs["environment"]["variables"]
    assert len(variables) == 4


@pytest.mark.parametrize("key", ["SST_KEY", "AWS_REGION", "bad-name"])
def test_reserved_or_invalid_environment_names_are_refused(build, key):
    with pytest.raises(ComponentError, match=f"environment.*{key}"):
        build(lambda: Function("Create", handler=HANDLER, environment={key: "x"}))


@pytest.mark.parametrize("handler", ["items.create", "app/functions/items", "/abs/items.create",
                                     "app/../items.create", "app/functions/items.1bad"])
def test_malformed_handlers_are_refused_with_the_expected_shape(build, handler):
    with pytest.raises(ComponentError, match=r"<folder>/<module>\.<function>|is not a function name"):
        build(lambda: Function("Create", handler=handler))


def test_handler_module_that_does_not_exist_is_refused(build):
    with pytest.raises(ComponentError, match=r"no \.py file for module nope in app/functions"):
        build(lambda: Function("Create", handler="app/functions/nope.create"))


def test_handler_function_that_the_module_does_not_define_is_refused_naming_what_it_does(build):
    # items.py exists; "craete" is a typo Lambda would only report on the first call.
    with pytest.raises(ComponentError, match=r"items\.py has no top-level 'craete'; it defines .*create"):
        build(lambda: Function("Create", handler="app/functions/items.craete"))


def test_handler_functions_are_found_without_importing_the_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "h.py").write_text(
        "raise SystemExit('importing the handler module at plan time')\n"
        "async def plain(event, context):\n    return 1\n"
        "try:\n    from json import dumps as guarded\nexcept ImportError:\n    guarded = None\n"
        "assigned = plain\n"
        "class Handler:\n    pass\n"
        "def outer():\n    def nested(event, context):\n        return 1\n"
    )
    for name in ("plain", "guarded", "assigned"):
        run(lambda name=name: Function(f"F{name.title()}", handler=f"fns/h.{name}"))
    with pytest.raises(ComponentError, match="has no top-level 'nested'"):
        run(lambda: Function("Nested", handler="fns/h.nested"))


def test_handler_module_with_a_syntax_error_is_refused_with_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "h.py").write_text("def main(event, context):\n    return (\n")
    with pytest.raises(ComponentError, match=r"h\.py line \d+ is not valid Python"):
        run(lambda: Function("Broken", handler="fns/h.main"))


def test_bundle_override_packages_the_wider_folder_with_a_dotted_handler(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src" / "functions").mkdir(parents=True)
    (tmp_path / "src" / "shared.py").write_text("X = 1\n")
    (tmp_path / "src" / "functions" / "items.py").write_text("def create(e, c):\n    return 1\n")
    plan = run(lambda: Function("Create", handler="src/functions/items.create", bundle="src"))
    inputs = plan.one(FUNCTION).inputs
    assert inputs["handler"] == "functions.items.create"
    with zipfile.ZipFile(tmp_path / inputs["code"]["archive"]) as zf:
        assert {"functions/items.py", "shared.py"} <= set(zf.namelist())


def test_handler_outside_the_bundle_is_refused(build):
    with pytest.raises(ComponentError, match="not inside the bundle folder"):
        build(lambda: Function("Create", handler=HANDLER, bundle="app/web"))


def test_nodejs_handlers_are_packaged_with_a_path_handler(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web" / "api").mkdir(parents=True)
    (tmp_path / "web" / "api" / "hello.mjs").write_text("export const handler = async () => 'hi';\n")
    plan = run(lambda: Function("Hello", handler="web/api/hello.handler", runtime="nodejs22.x", bundle="web"))
    inputs = plan.one(FUNCTION).inputs
    assert inputs["runtime"] == "nodejs22.x" and inputs["handler"] == "api/hello.handler"


def test_vpc_placement_adds_the_vpc_execution_policy(build):
    vpc = {"subnet_ids": ["subnet-1", "subnet-2"], "security_group_ids": ["sg-1"]}
    plan = build(lambda: Function("Create", handler=HANDLER, vpc=vpc))
    assert plan.one(FUNCTION).inputs["vpcConfig"] == {"subnetIds": ["subnet-1", "subnet-2"],
                                                     "securityGroupIds": ["sg-1"]}
    assert "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole" in [
        a.inputs["policyArn"] for a in plan.of_type(ATTACHMENT)
    ]


@pytest.mark.parametrize("in_vpc", [False, True])
def test_function_waits_for_every_grant_its_role_needs(build, in_vpc):
    vpc = {"subnet_ids": ["subnet-1", "subnet-2"], "security_group_ids": ["sg-1"]} if in_vpc else None
    plan = build(lambda: Function("Create", handler=HANDLER, link=[table()], vpc=vpc))
    function = plan.one(FUNCTION)
    grants = plan.of_type(ATTACHMENT) + plan.of_type(ROLE_POLICY)
    assert len(grants) == (3 if in_vpc else 2)
    # Created after them; on destroy, deleted (and its ENIs released) before they are detached.
    assert {g.urn for g in grants} <= set(function.dependencies)


def test_vpc_without_subnets_is_refused(build):
    with pytest.raises(ComponentError, match="subnet_ids"):
        build(lambda: Function("Create", handler=HANDLER, vpc={"security_group_ids": ["sg-1"]}))


def test_iam_function_url_by_default_and_public_url_with_both_grants(build):
    private = build(lambda: Function("Create", handler=HANDLER, url=True))
    assert private.one("aws:lambda/functionUrl:FunctionUrl").inputs["authorizationType"] == "AWS_IAM"
    assert private.of_type("aws:lambda/permission:Permission") == []
    public = build(lambda: Function("Create", handler=HANDLER, url={"auth": "none"}))
    assert public.one("aws:lambda/functionUrl:FunctionUrl").inputs["authorizationType"] == "NONE"
    grants = {p.inputs["action"]: p.inputs for p in public.of_type("aws:lambda/permission:Permission")}
    assert grants["lambda:InvokeFunctionUrl"]["functionUrlAuthType"] == "NONE"
    assert grants["lambda:InvokeFunction"]["invokedViaFunctionUrl"] is True


def test_reserved_concurrency_retries_and_sizes_are_passed_on(build):
    plan = build(lambda: Function("Create", handler=HANDLER, memory=512, timeout=60,
                                  reserved_concurrency=5, retries=0, architecture="x86_64"))
    inputs = plan.one(FUNCTION).inputs
    assert inputs["reservedConcurrentExecutions"] == 5 and inputs["memorySize"] == 512
    assert inputs["timeout"] == 60 and inputs["architectures"] == ["x86_64"]
    config = plan.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    assert config["maximumRetryAttempts"] == 0


@pytest.mark.parametrize(("actions", "resources"), [(["s3:*"], ["arn:aws:s3:::b"]), (["s3:GetObject"], ["*"])])
def test_wildcard_permissions_are_refused(build, actions, resources):
    with pytest.raises(ComponentError, match="grants"):
        build(lambda: Function("Create", handler=HANDLER, permissions=[Permission(actions, resources)]))


def test_linking_a_function_grants_invoke_on_that_function_only(build):
    def body():
        target = Function("Target", handler=HANDLER)
        Function("Caller", handler=HANDLER, link=[target])

    policy = json.loads(build(body).one(ROLE_POLICY).inputs["policy"])
    assert policy["Statement"] == [{
        "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
        "Resource": ["arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-Target"],
    }]


def test_transform_edits_the_underlying_function(build):
    plan = build(lambda: Function("Create", handler=HANDLER, transform={"function": {"memory_size": 2048}}))
    assert plan.one(FUNCTION).inputs["memorySize"] == 2048


class Owner(Component):
    type_token: ClassVar[str] = "harbor:test:Owner"


def test_resolve_function_accepts_a_handler_a_dict_or_a_function(build):
    made: dict[str, Function] = {}

    def body():
        owner = Owner("Topic")
        made["str"] = resolve_function(owner, "orders/created", HANDLER)
        made["dict"] = resolve_function(owner, "GET /items", {"handler": HANDLER, "memory": 256})
        existing = Function("Existing", handler=HANDLER)
        made["same"] = resolve_function(owner, "x", existing)
        made["existing"] = existing

    plan = build(body)
    assert made["same"] is made["existing"]
    owner = plan.named("Topic")
    assert {r.name for r in plan.children(owner)} == {"TopicOrdersCreated", "TopicGetItems"}
    assert plan.one(FUNCTION, "TopicGetItems-function").inputs["memorySize"] == 256
    assert made["str"].timeout_seconds == 20


def test_resolve_function_refuses_anything_else(build):
    with pytest.raises(ComponentError, match="needs a Function, a handler string"):
        build(lambda: resolve_function(Owner("Topic"), "x", 42))
