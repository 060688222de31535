"""The GitHub Actions workflows: OIDC only, least permissions, pinned actions, one deploy per stage."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses: (\S+) # v\d+(\.\d+)*\s*$")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def workflow(name: str) -> dict[str, Any]:
    return load(WORKFLOWS / name)


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in FILES for name, job in load(path)["jobs"].items()]


def steps() -> list[tuple[str, str, dict[str, Any]]]:
    return [(file, name, step) for file, name, job in jobs() for step in job.get("steps", [])]


def test_there_are_workflows_and_each_parses_as_yaml():
    assert {p.name for p in FILES} == {"checks.yml", "deploy.yml", "pull-request.yml"}
    for path in FILES:
        assert load(path)["jobs"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflows_grant_nothing_by_default(path):
    assert load(path)["permissions"] == {}


def test_every_job_states_its_own_least_permissions():
    for file, name, job in jobs():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{file}:{name} has no permissions block"
        assert "write-all" not in str(permissions)
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"id-token", "pull-requests"}, f"{file}:{name} writes {writes}"


def test_only_jobs_that_assume_an_aws_role_get_an_oidc_token():
    for file, name, job in jobs():
        assumes = any("configure-aws-credentials" in step.get("uses", "") for step in job.get("steps", []))
        assert (job.get("permissions", {}).get("id-token") == "write") == assumes, f"{file}:{name}"


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version():
    text_lines = [line for path in FILES for line in path.read_text().splitlines()]
    uses = [step["uses"] for _f, _n, step in steps() if "uses" in step]
    assert uses
    for ref in uses:
        assert PINNED.match(ref), f"{ref} is not pinned to a 40-character commit SHA"
    for line in text_lines:
        if line.strip().startswith(("- uses:", "uses:")) and "@" in line:
            assert VERSION_COMMENT.search(line), f"no version comment: {line.strip()}"


def test_no_stored_aws_keys_anywhere():
    for path in FILES:
        text = path.read_text()
        assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text
        assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
        assert "secrets." not in text, f"{path.name} reads a stored secret"
    for _file, _name, step in steps():
        if "configure-aws-credentials" in step.get("uses", ""):
            assert step["with"]["role-to-assume"]
            assert set(step["with"]) <= {"role-to-assume", "role-session-name", "aws-region"}


def test_no_expression_is_expanded_inside_a_shell_script():
    for file, name, step in steps():
        assert "${{" not in step.get("run", ""), f"{file}:{name}: pass ${{{{ }}}} values through env"


def test_checkouts_do_not_persist_the_token():
    for _file, _name, step in steps():
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_pull_requests_run_tests_plans_for_every_stage_and_workflow_linting():
    checks = workflow("checks.yml")
    assert "pull_request" in checks["on"] and "workflow_call" in checks["on"]
    scripts = "\n".join(step.get("run", "") for job in checks["jobs"].values() for step in job["steps"])
    assert ".venv/bin/pytest" in scripts
    assert "for stage in dev staging prod" in scripts and "infra plan --stage" in scripts
    assert "infra plan --program bootstrap" in scripts
    assert "actionlint .github/workflows" in scripts
    assert "zizmor --offline --persona auditor .github/workflows" in scripts


def test_pull_requests_get_a_staging_preview_comment_and_a_pr_stage_destroyed_on_close():
    pr = workflow("pull-request.yml")
    assert set(pr["on"]["pull_request"]["types"]) >= {"opened", "synchronize", "closed"}
    preview = pr["jobs"]["preview-staging"]
    scripts = "\n".join(step.get("run", "") for step in preview["steps"])
    assert "pulumi preview --stack staging" in scripts and "gh pr comment" in scripts
    assert preview["permissions"]["pull-requests"] == "write"
    stage = pr["jobs"]["preview-stage"]
    assert stage["env"]["STAGE"] == "pr-${{ github.event.pull_request.number }}"
    by_name = {step.get("name", ""): step for step in stage["steps"]}
    up = by_name["pulumi up (opened, synchronize, reopened)"]
    down = by_name["pulumi destroy (closed)"]
    assert 'pulumi up --stack "$STAGE" --yes' in up["run"] and up["if"] == "github.event.action != 'closed'"
    assert 'pulumi destroy --stack "$STAGE" --yes' in down["run"] and down["if"] == "github.event.action == 'closed'"
    for job in (preview, stage):
        assert job["environment"] == "preview"
        assert "head.repo.full_name == github.repository" in job["if"], "forks get no OIDC token"
    assert stage["concurrency"] == {
        "group": "deploy-pr-${{ github.event.pull_request.number }}", "cancel-in-progress": False
    }


def test_push_to_main_deploys_staging_and_dispatch_deploys_the_chosen_stage():
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    stage_input = deploy["on"]["workflow_dispatch"]["inputs"]["stage"]
    assert stage_input["type"] == "choice" and stage_input["options"] == ["dev", "staging", "prod"]
    job = deploy["jobs"]["deploy"]
    chosen = "${{ github.event_name == 'push' && 'staging' || inputs.stage }}"
    # The GitHub environment is the stage, so prod runs only in the protected "prod" environment,
    # and the prod role trusts only tokens issued for that environment.
    assert job["environment"] == chosen
    assert job["env"]["STAGE"] == chosen
    assert job["concurrency"] == {"group": f"deploy-{chosen}", "cancel-in-progress": False}
    assert job["needs"] == "checks"
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'pulumi up --stack "$STAGE" --yes' in scripts
    assert 'pulumi login "$PULUMI_BACKEND_URL"' in scripts
    assert '--secrets-provider "$PULUMI_SECRETS_PROVIDER"' in scripts


def test_backend_secrets_provider_and_roles_come_from_repository_variables():
    for file, name, job in jobs():
        if not any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", [])):
            continue
        assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}", f"{file}:{name}"
    deploy_steps = workflow("deploy.yml")["jobs"]["deploy"]["steps"]
    role = next(step for step in deploy_steps if step.get("id") == "role")
    assert role["env"] == {
        "ROLE_DEV": "${{ vars.AWS_ROLE_ARN_DEV }}",
        "ROLE_STAGING": "${{ vars.AWS_ROLE_ARN_STAGING }}",
        "ROLE_PROD": "${{ vars.AWS_ROLE_ARN_PROD }}",
    }
    pr_jobs = workflow("pull-request.yml")["jobs"].values()
    for job in pr_jobs:
        aws = next(step for step in job["steps"] if "configure-aws-credentials" in step.get("uses", ""))
        assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN_PREVIEW }}"


def test_every_deploying_job_holds_its_stage_lock_without_cancelling():
    for file, name, job in jobs():
        scripts = "\n".join(step.get("run", "") for step in job.get("steps", []))
        if "pulumi up" in scripts or "pulumi destroy" in scripts:
            assert job["concurrency"]["group"].startswith("deploy-"), f"{file}:{name}"
            assert job["concurrency"]["cancel-in-progress"] is False, f"{file}:{name}"


def _linter(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_actionlint_reports_nothing():
    result = subprocess.run(
        [_linter("actionlint"), *map(str, FILES)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_offline_reports_nothing():
    result = subprocess.run(
        [_linter("zizmor"), "--offline", "--persona", "auditor", str(WORKFLOWS)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
