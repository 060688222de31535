"""Container-image functions and run on deploy: repository, image build, links inside, invocation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import APP, stage_config

from components import ComponentError, Dynamo, Function
from components.aws.container import LINK_FILE_IN_IMAGE, generated_dockerfile
from infra.harness import Plan, run_mocked

FUNCTION = "aws:lambda/function:Function"
REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
IMAGE = "docker-build:index:Image"
INVOCATION = "aws:lambda/invocation:Invocation"

ROOT = Path(__file__).resolve().parent.parent
READER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app
print(json.dumps(app.handler({}, None)))
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A program folder with a Python service and a migrator, as seed 002 has."""
    monkeypatch.chdir(tmp_path)
    service = tmp_path / "services" / "valuation"
    service.mkdir(parents=True)
    (service / "app.py").write_text(
        "from sst import Resource\n\n"
        "def handler(event, context):\n"
        "    return {'table': Resource.Table.name, 'stage': Resource.App.stage}\n"
    )
    (service / "requirements.txt").write_text("lightgbm==4.5.0\n")
    migrator = tmp_path / "services" / "migrator"
    migrator.mkdir(parents=True)
    (migrator / "migrate.py").write_text("def handler(event, context):\n    return 'ok'\n")
    (migrator / "Dockerfile").write_text(
        "FROM public.ecr.aws/lambda/python:3.11\nCOPY . ${LAMBDA_TASK_ROOT}/\nCMD [\"migrate.handler\"]\n"
    )
    return tmp_path


def table() -> Dynamo:
    return Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})


def run(body, stage: str = "dev", **settings: Any) -> Plan:
    def program() -> None:
        from components import start_app

        start_app()
        body()

    return run_mocked(program, APP, stage, stage_config(stage, **settings))


def valuation(**extra: Any):
    def body() -> None:
        settings = {"runtime": "python3.11", "memory": 1536, "image": True, **extra}
        Function("Valuation", handler="services/valuation/app.handler", link=[table()], **settings)

    return body


# -- the repository ------------------------------------------------------------------------
def test_each_image_function_gets_its_own_scanned_encrypted_repository(project):
    plan = run(valuation())
    repository = plan.one(REPOSITORY).inputs
    assert repository["name"] == "harbor-dev-valuation"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert repository["forceDelete"] is True, "a removing stage's destroy empties and deletes it"


def test_lifecycle_policy_keeps_the_newest_images_only(project):
    plan = run(valuation(image={"keep": 3}))
    (rule,) = json.loads(plan.one(LIFECYCLE).inputs["policy"])["rules"]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}
    assert rule["action"] == {"type": "expire"}


def test_prod_keeps_and_protects_the_repository(project):
    plan = run(valuation(), stage="prod", removal="retain", protect=True)
    repository = plan.one(REPOSITORY)
    assert repository.protect and repository.retain_on_delete
    assert repository.inputs["forceDelete"] is False


def test_only_this_function_may_pull_from_the_repository(project):
    plan = run(valuation())
    (statement,) = json.loads(plan.one(REPOSITORY_POLICY).inputs["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:sourceArn": "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-Valuation"}
    }
    function = plan.one(FUNCTION)
    assert plan.one(REPOSITORY_POLICY).urn in function.dependencies, "Lambda pulls when the function is created"


# -- the image -----------------------------------------------------------------------------
@pytest.mark.parametrize(("architecture", "platform"), [("arm64", "linux/arm64"), ("x86_64", "linux/amd64")])
def test_image_is_built_for_the_functions_architecture_and_pushed(project, architecture, platform):
    plan = run(valuation(architecture=architecture))
    image = plan.one(IMAGE).inputs
    assert image["platforms"] == [platform]
    assert image["push"] is True
    assert image["buildOnPreview"] is False, "a preview must not need Docker"
    assert image["tags"] == ["123456789012.dkr.ecr.us-east-1.amazonaws.com/harbor-dev-valuation:latest"]
    assert image["context"]["location"] == "services/valuation"
    assert plan.one(FUNCTION).inputs["architectures"] == [architecture]


def test_function_runs_the_image_by_digest_with_the_handler_as_command(project):
    plan = run(valuation())
    function = plan.one(FUNCTION).inputs
    assert function["packageType"] == "Image"
    repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/harbor-dev-valuation"
    assert function["imageUri"].startswith(f"{repository}@sha256:")
    assert function["imageConfig"] == {"commands": ["app.handler"]}
    assert function["memorySize"] == 1536
    assert not {"runtime", "handler", "code", "sourceCodeHash"} & set(function), "Lambda refuses them for images"


def test_without_a_dockerfile_one_is_generated_from_the_lambda_base_image(project):
    dockerfile = run(valuation()).one(IMAGE).inputs["dockerfile"]["inline"]
    lines = dockerfile.splitlines()
    assert lines[0] == "FROM public.ecr.aws/lambda/python:3.11"
    assert "COPY requirements.txt ${LAMBDA_TASK_ROOT}/" in lines
    assert any(line.startswith("RUN pip install") and "requirements.txt" in line for line in lines)
    assert 'CMD ["app.handler"]' in lines
    assert lines[-1] == f"COPY --from=harbor-links resource.enc {LINK_FILE_IN_IMAGE}"


def test_a_dockerfile_in_the_folder_is_used_with_the_link_file_copied_last(project):
    def body():
        Function("Migrator", handler="services/migrator/migrate.handler", image=True, architecture="x86_64")

    dockerfile = run(body).one(IMAGE).inputs["dockerfile"]["inline"]
    own = (project / "services/migrator/Dockerfile").read_text()
    assert dockerfile.startswith(own)
    assert dockerfile.splitlines()[-1] == f"COPY --from=harbor-links resource.enc {LINK_FILE_IN_IMAGE}"


def test_node_images_install_from_the_lockfile(project):
    folder = project / "services" / "api"
    folder.mkdir()
    (folder / "index.mjs").write_text("export const handler = async () => 'ok';\n")
    (folder / "package.json").write_text("{}")
    (folder / "package-lock.json").write_text("{}")
    text = generated_dockerfile("nodejs22.x", folder, "index.handler")
    assert text.splitlines()[0] == "FROM public.ecr.aws/lambda/nodejs:22"
    assert "RUN npm ci --omit=dev --prefix ${LAMBDA_TASK_ROOT}" in text


def test_same_sources_give_the_same_build_inputs(project):
    first = run(valuation()).one(IMAGE).inputs
    second = run(valuation()).one(IMAGE).inputs
    assert first == second
    assert first["buildArgs"] == {"SOURCE_DATE_EPOCH": "0"}
    assert not any(os.path.isabs(str(v)) for v in (first["context"]["location"],
                                                    first["context"]["named"]["harbor-links"]["location"]))


def test_link_context_files_have_fixed_modes_whatever_the_umask(project):
    previous = os.umask(0o077)
    try:
        image = run(valuation()).one(IMAGE).inputs
    finally:
        os.umask(previous)
    link_file = project / image["context"]["named"]["harbor-links"]["location"] / "resource.enc"
    assert link_file.stat().st_mode & 0o777 == 0o644


def test_a_link_change_changes_the_image_inputs(project):
    before = run(valuation()).one(IMAGE).inputs["labels"]["harbor.links.sha256"]

    def body():
        other = Dynamo("Other", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        Function("Valuation", handler="services/valuation/app.handler", runtime="python3.11",
                 image=True, link=[table(), other])

    after = run(body).one(IMAGE).inputs["labels"]["harbor.links.sha256"]
    assert before != after


# -- links inside the image ----------------------------------------------------------------
def test_handler_in_the_image_reads_its_links_with_sst_sdk(project, tmp_path):
    """Lay the image out as its Dockerfile would and run the handler with the real sst-sdk."""
    plan = run(valuation(), stage="staging")
    image = plan.one(IMAGE).inputs
    function = plan.one(FUNCTION).inputs
    task = tmp_path / "task"
    shutil.copytree(project / image["context"]["location"], task)
    link_dir = project / image["context"]["named"]["harbor-links"]["location"]
    shutil.copy(link_dir / "resource.enc", task / "resource.enc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SST_")}
    env.update(function["environment"]["variables"])
    assert env["SST_KEY_FILE"] == LINK_FILE_IN_IMAGE
    env["SST_KEY_FILE"] = str(task / "resource.enc")  # /var/task inside the image
    result = subprocess.run([sys.executable, "-c", READER, str(task)], env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {"table": "harbor-staging-Table", "stage": "staging"}


def test_harbor_runtime_travels_in_the_image_as_it_would_in_a_zip(project):
    migrator = project / "services" / "migrator"
    (migrator / "migrate.py").write_text(
        "from harbor_runtime import database_url\n\ndef handler(event, context):\n    return 'ok'\n"
    )
    plan = run(lambda: Function("Migrator", handler="services/migrator/migrate.handler", image=True))
    image = plan.one(IMAGE).inputs
    assert image["dockerfile"]["inline"].splitlines()[-2:] == [
        f"COPY --from=harbor-links resource.enc {LINK_FILE_IN_IMAGE}",
        "COPY --from=harbor-links harbor_runtime /var/task/harbor_runtime",
    ]
    links = project / image["context"]["named"]["harbor-links"]["location"]
    assert (links / "harbor_runtime" / "database.py").read_bytes() == (
        ROOT / "harbor_runtime" / "database.py").read_bytes()

    (migrator / "migrate.py").write_text("def handler(event, context):\n    return 'ok'\n")
    image = run(lambda: Function("Migrator", handler="services/migrator/migrate.handler", image=True)).one(IMAGE)
    assert "harbor_runtime" not in image.inputs["dockerfile"]["inline"]
    assert not (links / "harbor_runtime").exists(), "the link context keeps only what this build copies"


# -- bad input -------------------------------------------------------------------------------
def test_missing_dockerfile_is_refused(project):
    with pytest.raises(ComponentError, match=r"image.dockerfile 'Dockerfile.gpu' does not exist in services/valuation"):
        run(valuation(image={"dockerfile": "Dockerfile.gpu"}))


def test_a_missing_dockerfile_stops_before_anything_registers(project, monkeypatch):
    from infra import harness

    monitors: list[harness.RecordingMonitor] = []

    class Keeping(harness.RecordingMonitor):
        def __init__(self, mocks) -> None:
            super().__init__(mocks)
            monitors.append(self)

    monkeypatch.setattr(harness, "RecordingMonitor", Keeping)
    with pytest.raises(ComponentError, match=r"image.dockerfile 'Nope' does not exist"):
        run(lambda: (table(), Function("Valuation", handler="services/valuation/app.handler",
                                         image={"dockerfile": "Nope"})))
    (monitor,) = monitors
    assert [r.type for r in monitor.records] == ["pulumi:pulumi:Stack"]


def test_dockerfile_outside_the_folder_is_refused(project):
    with pytest.raises(ComponentError, match=r"must be a path inside the handler's folder"):
        run(valuation(image={"dockerfile": "../Dockerfile"}))


def test_unknown_image_setting_is_refused(project):
    with pytest.raises(ComponentError, match=r"image.*platform"):
        run(valuation(image={"platform": "linux/arm64"}))


def test_zip_functions_create_no_repository_or_image(project):
    plan = run(lambda: Function("Plain", handler="services/migrator/migrate.handler"))
    assert not plan.of_type(REPOSITORY) and not plan.of_type(IMAGE)
    assert plan.one(FUNCTION).inputs["runtime"] == "python3.12"


# -- run on deploy ---------------------------------------------------------------------------
def migrator(after: bool = True, source: str = "v1", **extra: Any):
    def body() -> None:
        database = table()
        settings = {"after": [database], "input": {"command": "upgrade"}} if after else True
        Function("Migrator", handler="services/migrator/migrate.handler", architecture="x86_64", memory=512,
                 timeout=300, image=True, run_on_deploy=settings, **extra)

    return body


def test_run_on_deploy_invokes_the_function_after_it_and_the_database(project):
    plan = run(migrator())
    invocation = plan.one(INVOCATION)
    assert invocation.inputs["functionName"] == "harbor-dev-Migrator"
    assert json.loads(invocation.inputs["input"]) == {"command": "upgrade"}
    assert plan.one(FUNCTION).urn in invocation.dependencies
    assert plan.one("aws:dynamodb/table:Table").urn in invocation.dependencies
    assert set(invocation.inputs["triggers"]) == {"code", "configuration", "input"}


def test_run_on_deploy_triggers_follow_the_code_and_nothing_else(project):
    triggers = run(migrator()).one(INVOCATION).inputs["triggers"]
    assert run(migrator()).one(INVOCATION).inputs["triggers"] == triggers, "no change: no invocation"
    image_digest = run(migrator()).one(FUNCTION).inputs["imageUri"].split("@", 1)[1]
    assert triggers["code"] == image_digest

    (project / "services/migrator/migrate.py").write_text("def handler(event, context):\n    return 'v2'\n")
    (project / "services/migrator/Dockerfile").write_text(
        (project / "services/migrator/Dockerfile").read_text() + "ENV MIGRATIONS=v2\n"
    )
    changed = run(migrator()).one(INVOCATION).inputs["triggers"]
    assert changed["code"] != triggers["code"] and changed["configuration"] == triggers["configuration"]


def test_run_on_deploy_reruns_when_the_configuration_changes(project):
    before = run(migrator()).one(INVOCATION).inputs["triggers"]
    after = run(migrator(environment={"LOG_LEVEL": "debug"})).one(INVOCATION).inputs["triggers"]
    assert after["configuration"] != before["configuration"] and after["code"] == before["code"]


def test_run_on_deploy_works_for_zip_functions_on_their_source_hash(project):
    plan = run(lambda: Function("Seed", handler="services/migrator/migrate.handler", run_on_deploy=True))
    invocation = plan.one(INVOCATION).inputs
    assert invocation["triggers"]["code"] == plan.one(FUNCTION).inputs["sourceCodeHash"]
    assert invocation["input"] == "{}"


def test_functions_without_run_on_deploy_are_never_invoked(project):
    assert not run(valuation()).of_type(INVOCATION)


def test_run_on_deploy_after_must_be_resources(project):
    def body():
        Function("Migrator", handler="services/migrator/migrate.handler", run_on_deploy={"after": ["database"]})

    with pytest.raises(ComponentError, match=r"run_on_deploy.after holds 'database'; list resources"):
        run(body)


def test_transform_reaches_the_repository_and_the_image(project):
    plan = run(valuation(transform={"repository": {"image_tag_mutability": "IMMUTABLE"},
                                    "image": {"no_cache": True}}))
    assert plan.one(REPOSITORY).inputs["imageTagMutability"] == "IMMUTABLE"
    assert plan.one(IMAGE).inputs["noCache"] is True


def test_run_on_deploy_input_must_be_json(project):
    def body():
        Function("Migrator", handler="services/migrator/migrate.handler",
                 run_on_deploy={"input": {"revisions": {"head", "base"}}})

    with pytest.raises(ComponentError, match=r"run_on_deploy.input must be plain JSON data"):
        run(body)
