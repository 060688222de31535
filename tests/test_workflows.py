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


def test_checks_run_tests_guardrails_and_plans_for_every_stage_and_workflow_linting():
    checks = workflow("checks.yml")
    assert set(checks["on"]) == {"workflow_call"}, "pull-request.yml and deploy.yml call it, so others wait"
    scripts = "\n".join(step.get("run", "") for job in checks["jobs"].values() for step in job["steps"])
    assert ".venv/bin/pytest" in scripts
    assert "for stage in dev staging prod pr-1; do" in scripts
    assert '.venv/bin/infra check --stage "$stage"' in scripts and '.venv/bin/infra plan --stage "$stage"' in scripts
    assert "infra plan --program bootstrap" in scripts
    assert "actionlint .github/workflows" in scripts
    assert "zizmor --offline --persona auditor .github/workflows" in scripts
    pr = workflow("pull-request.yml")
    assert pr["jobs"]["checks"]["uses"] == "./.github/workflows/checks.yml"
    assert "head.repo" not in pr["jobs"]["checks"].get("if", ""), "forks get the checks too"
    assert workflow("deploy.yml")["jobs"]["checks"]["uses"] == "./.github/workflows/checks.yml"


# -- every job that runs pulumi ------------------------------------------------------------------
PULUMI_COMMAND = re.compile(r"(^|[\s;(!&|])pulumi\s+(up|preview|destroy|refresh|stack|login|import)\b", re.M)


def pulumi_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(f, n, job) for f, n, job in jobs() if any(PULUMI_COMMAND.search(s.get("run", "")) for s in
                                                       job.get("steps", []))]


def test_the_pulumi_jobs_are_the_deploys_and_previews():
    assert {(f, n) for f, n, _ in pulumi_jobs()} == {
        ("deploy.yml", "deploy"),
        ("pull-request.yml", "preview-staging"),
        ("pull-request.yml", "preview-stage"),
        ("pull-request.yml", "preview-stage-destroy"),
    }


def test_every_pulumi_job_builds_the_sites_first_with_cached_npm():
    for file, name, job in pulumi_jobs():
        steps_ = job["steps"]
        first_pulumi = next(i for i, s in enumerate(steps_) if PULUMI_COMMAND.search(s.get("run", "")))
        node = [i for i, s in enumerate(steps_) if s.get("uses", "").startswith("actions/setup-node@")]
        assert node and node[0] < first_pulumi, f"{file}:{name} sets up Node.js before pulumi"
        setup = steps_[node[0]]["with"]
        assert setup["cache"] == "npm" and setup["cache-dependency-path"] == "app/web/package-lock.json"
        assert int(setup["node-version"]) >= 20
        build = [i for i, s in enumerate(steps_)
                 if "npm ci --prefix app/web" in s.get("run", "") and ".venv/bin/infra build-site app/web" in s["run"]]
        assert build and node[0] < build[0] < first_pulumi, f"{file}:{name} builds app/web before pulumi"
        install = next(i for i, s in enumerate(steps_) if "pip install --no-deps -e ." in s.get("run", ""))
        assert install < build[0], f"{file}:{name} installs infra before it builds"


def test_every_pulumi_job_keeps_the_stacks_secrets_provider_across_runs():
    for file, name, job in pulumi_jobs():
        assert job["env"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true", f"{file}:{name}"
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if "stack select --create" in line or "stack init" in line:
                    assert '--secrets-provider "$PULUMI_SECRETS_PROVIDER"' in line, f"{file}:{name}: {line}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_run_step_is_bash_with_pipefail(path):
    # GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`; the implicit
    # default shell has no pipefail, so `pulumi ... | tee` would hide a failure.
    document = load(path)
    assert document["defaults"]["run"]["shell"] == "bash"
    for job in document["jobs"].values():
        assert "shell" not in job.get("defaults", {}).get("run", {})
        for step in job.get("steps", []):
            assert "shell" not in step
            script = step.get("run", "")
            assert "set +e" not in script and "set +o pipefail" not in script
            for line in script.splitlines():
                if PULUMI_COMMAND.search(line):
                    assert "|| true" not in line and "|| :" not in line, line


def test_deploys_and_preview_stages_run_with_the_policy_pack():
    runs = {(f, n): "\n".join(s.get("run", "") for s in job["steps"]) for f, n, job in pulumi_jobs()}
    assert 'pulumi up --stack "$STAGE" --yes --non-interactive --diff --policy-pack policy' in runs[
        ("deploy.yml", "deploy")]
    assert 'pulumi up --stack "$STAGE" --yes --non-interactive --policy-pack policy' in runs[
        ("pull-request.yml", "preview-stage")]
    assert "pulumi preview --stack staging --non-interactive --policy-pack policy --json" in runs[
        ("pull-request.yml", "preview-staging")]


def test_preview_deploys_wait_for_the_checks_and_a_maintainers_label_never_forks_or_bots():
    pr = workflow("pull-request.yml")
    assert set(pr["on"]["pull_request"]["types"]) == {"opened", "synchronize", "reopened", "labeled", "closed"}
    for name in ("preview-staging", "preview-stage"):
        job = pr["jobs"][name]
        assert job["needs"] == "checks"
        condition = " ".join(job["if"].split())
        for clause in ("github.event.action != 'closed'",
                       "github.event.pull_request.head.repo.full_name == github.repository",
                       "github.event.pull_request.user.type != 'Bot'",
                       "contains(github.event.pull_request.labels.*.name, 'preview')"):
            assert f"&& {clause}" in condition or condition.startswith(clause), (name, clause)
        assert " || " not in condition, "every clause must hold"
        assert job["environment"] == "preview"
    destroy = " ".join(pr["jobs"]["preview-stage-destroy"]["if"].split())
    assert destroy == ("github.event.action == 'closed' && github.event.pull_request.head.repo.full_name == "
                       "github.repository && github.event.pull_request.user.type != 'Bot'")


def test_pull_requests_get_a_staging_preview_and_a_pr_stage_destroyed_on_close():
    pr = workflow("pull-request.yml")
    preview = pr["jobs"]["preview-staging"]
    scripts = "\n".join(step.get("run", "") for step in preview["steps"])
    assert "pulumi preview --stack staging" in scripts and "gh pr comment" in scripts
    assert preview["permissions"]["pull-requests"] == "write"
    stage, down = pr["jobs"]["preview-stage"], pr["jobs"]["preview-stage-destroy"]
    for job in (stage, down):
        assert job["env"]["STAGE"] == "pr-${{ github.event.pull_request.number }}"
        assert job["concurrency"] == {
            "group": "deploy-pr-${{ github.event.pull_request.number }}", "cancel-in-progress": False
        }
    up = next(s for s in stage["steps"] if s.get("name") == "pulumi up")["run"]
    destroy = next(s for s in down["steps"] if s.get("name") == "pulumi destroy and stack rm")["run"]
    assert 'pulumi up --stack "$STAGE" --yes' in up
    assert 'pulumi destroy --stack "$STAGE" --yes' in destroy and 'pulumi stack rm "$STAGE" --yes' in destroy


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


def test_backend_secrets_providers_and_roles_come_from_repository_variables():
    for file, name, job in jobs():
        if not any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", [])):
            continue
        assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}", f"{file}:{name}"
    deploy_steps = workflow("deploy.yml")["jobs"]["deploy"]["steps"]
    chooser = next(step for step in deploy_steps if step.get("id") == "stage")
    assert chooser["env"] == {
        **{f"ROLE_{s.upper()}": f"${{{{ vars.AWS_ROLE_ARN_{s.upper()} }}}}" for s in ("dev", "staging", "prod")},
        **{f"SECRETS_{s.upper()}": f"${{{{ vars.PULUMI_SECRETS_PROVIDER_{s.upper()} }}}}"
           for s in ("dev", "staging", "prod")},
    }
    pr = workflow("pull-request.yml")["jobs"]
    for name in ("preview-staging", "preview-stage", "preview-stage-destroy"):
        aws = next(step for step in pr[name]["steps"] if "configure-aws-credentials" in step.get("uses", ""))
        assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN_PREVIEW }}"
    assert pr["preview-stage"]["env"]["PULUMI_SECRETS_PROVIDER"] == "${{ vars.PULUMI_SECRETS_PROVIDER_PREVIEW }}"


def test_every_variable_the_workflows_read_is_a_bootstrap_output():
    import contextlib
    import io
    import json

    from infra.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--program", "bootstrap", "--stage", "example", "--json"]) == 0
    outputs = json.loads(out.getvalue())["outputs"]
    used = {name for path in FILES for name in re.findall(r"vars\.([A-Z_]+)", path.read_text())}
    assert used and used <= set(outputs), used - set(outputs)


def test_every_deploying_job_holds_its_stage_lock_without_cancelling():
    for file, name, job in jobs():
        scripts = "\n".join(step.get("run", "") for step in job.get("steps", []))
        if "pulumi up" in scripts or "pulumi destroy" in scripts:
            assert job["concurrency"]["group"].startswith("deploy-"), f"{file}:{name}"
            assert job["concurrency"]["cancel-in-progress"] is False, f"{file}:{name}"


# -- the scripts, run with a stand-in pulumi ---------------------------------------------------------
def step_script(file: str, job: str, name_start: str) -> str:
    step = next(s for s in workflow(file)["jobs"][job]["steps"] if s.get("name", "").startswith(name_start))
    return step["run"]


def run_step(script: str, tmp_path: Path, pulumi: str, **env: str) -> subprocess.CompletedProcess:
    """Run a step as GitHub does for `shell: bash`, with ``pulumi`` replaced by a script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pulumi"
    fake.write_text("#!/usr/bin/env bash\n" + pulumi)
    fake.chmod(0o755)
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True, exist_ok=True)
    (venv / "python").unlink(missing_ok=True)
    (venv / "python").symlink_to(sys.executable)
    (tmp_path / "step.sh").write_text(script)
    summary = tmp_path / "summary.md"
    environment = {
        "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "getreggie/harbor",
        "GITHUB_RUN_ID": "4242", "PULUMI_BACKEND_URL": "s3://state?region=us-east-1",
        "PULUMI_SECRETS_PROVIDER": "awskms://alias/k?region=us-east-1", **env,
    }
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(tmp_path / "step.sh")],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)


def test_a_failing_pulumi_up_fails_the_deploy(tmp_path):
    script = step_script("deploy.yml", "deploy", "pulumi up")
    ok = run_step(script, tmp_path, 'echo "pulumi $*"')
    assert ok.returncode == 0, ok.stderr
    failed = run_step(script, tmp_path, 'if [ "$1" = up ]; then echo "error: boom" >&2; exit 255; fi')
    assert failed.returncode != 0


@pytest.mark.parametrize(
    ("file", "job", "step"),
    [("deploy.yml", "deploy", "pulumi up"), ("pull-request.yml", "preview-stage", "pulumi up"),
     ("pull-request.yml", "preview-stage-destroy", "pulumi destroy")],
)
def test_a_stack_whose_state_lacks_its_secrets_provider_gets_it_before_pulumi_runs(tmp_path, file, job, step):
    if not shutil.which("jq"):
        pytest.skip("jq is not installed (GitHub's runners have it)")
    script = step_script(file, job, step)
    calls = tmp_path / "calls"
    record = f'echo "$*" >> {calls}\n'
    # The first run stopped before any state was saved: the state names no provider.
    empty = record + 'if [ "$1 $2" = "stack export" ]; then echo \'{"version": 3, "deployment": {}}\'; fi'
    assert run_step(script, tmp_path, empty, STAGE="pr-5").returncode == 0
    lines = calls.read_text().splitlines()
    change = lines.index("stack change-secrets-provider --stack pr-5 awskms://alias/k?region=us-east-1")
    assert change < next(i for i, line in enumerate(lines) if line.startswith(("up ", "destroy ")))
    calls.unlink()
    # Once the state holds the provider (every run after a saved one), nothing changes.
    kept = record + ('if [ "$1 $2" = "stack export" ]; then echo \'{"deployment": {"secrets_providers": '
                     '{"type": "cloud", "state": {}}}}\'; fi')
    assert run_step(script, tmp_path, kept, STAGE="pr-5").returncode == 0
    assert not any("change-secrets-provider" in line for line in calls.read_text().splitlines())


def test_a_preview_stage_missing_secrets_fails_and_names_the_fallback_commands(tmp_path):
    from components.aws.secret import SecretsMissingError

    message = str(SecretsMissingError("harbor", "pr-5", ["SecretKey", "StripeSecretKey"]))
    script = step_script("pull-request.yml", "preview-stage", "pulumi up")
    pulumi = f"""if [ "$1" = up ]; then cat <<'MSG'
error: {message}
MSG
exit 255; fi"""
    result = run_step(script, tmp_path, pulumi, STAGE="pr-5")
    assert result.returncode == 1
    assert ("::error title=Secrets missing for pr-5::set each once for every preview stage: "
            "infra secret set SecretKey --fallback;infra secret set StripeSecretKey --fallback") in result.stdout
    other = run_step(script, tmp_path, 'if [ "$1" = up ]; then echo "error: AccessDenied"; exit 255; fi', STAGE="pr-5")
    assert other.returncode == 1 and "::error" not in other.stdout
    unset = run_step(script, tmp_path, "exit 0", STAGE="pr-5", PULUMI_SECRETS_PROVIDER="")
    assert unset.returncode == 1 and "PULUMI_SECRETS_PROVIDER_PREVIEW" in unset.stdout


PREVIEW_JSON = {
    "steps": [
        {"op": "update", "urn": "urn:pulumi:staging::harbor::aws:lambda/function:Function::Api",
         "newState": {"outputs": {"arn": "arn:aws:lambda:us-east-1:123456789012:function:harbor-staging-Api"}}},
        {"op": "create", "urn": "urn:pulumi:staging::harbor::aws:sqs/queue:Queue::Jobs"},
        {"op": "same", "urn": "urn:pulumi:staging::harbor::aws:dynamodb/table:Table::Table"},
    ],
    "changeSummary": {"create": 1, "update": 1, "same": 250, "delete": 2},
}


def test_the_pull_request_comment_is_a_summary_without_names_or_account(tmp_path):
    import json

    script = step_script("pull-request.yml", "preview-staging", "pulumi preview")
    pulumi = f"""case "$1" in
  preview) cat <<'JSON'
{json.dumps(PREVIEW_JSON)}
JSON
  ;;
esac"""
    result = run_step(script, tmp_path, pulumi)
    assert result.returncode == 0, result.stdout + result.stderr
    comment = (tmp_path / "comment.md").read_text()
    assert comment == (
        "### `pulumi preview` of staging\n\n"
        "| to create | to update | to replace | to delete | unchanged |\n"
        "|---:|---:|---:|---:|---:|\n"
        "| 1 | 1 | 0 | 2 | 250 |\n\n"
        "Resource-by-resource detail: [the workflow run's log](https://github.com/getreggie/harbor/actions/runs/4242).\n"
    )
    assert "123456789012" not in comment and "urn:" not in comment
    # the detail goes to the run's log
    assert "update urn:pulumi:staging::harbor::aws:lambda/function:Function::Api" in result.stdout
    assert (tmp_path / "summary.md").read_text() == comment


def test_the_staging_preview_fails_when_pulumi_fails_and_says_when_staging_is_new(tmp_path):
    script = step_script("pull-request.yml", "preview-staging", "pulumi preview")
    failed = run_step(script, tmp_path, 'if [ "$1" = preview ]; then echo \'{"diagnostics": []}\'; exit 255; fi')
    assert failed.returncode == 1 and "pulumi preview of staging failed" in failed.stdout
    missing = """if [ "$1" = stack ]; then echo "error: no stack named '$3' found" >&2; exit 255; fi"""
    new = run_step(script, tmp_path, missing)
    assert new.returncode == 0
    assert "staging has not been deployed yet" in (tmp_path / "comment.md").read_text()
    denied = run_step(script, tmp_path, 'if [ "$1" = stack ]; then echo "error: AccessDenied" >&2; exit 255; fi')
    assert denied.returncode == 1 and "AccessDenied" in denied.stdout


def test_destroy_on_close_skips_a_stage_never_deployed_and_fails_on_other_errors(tmp_path):
    script = step_script("pull-request.yml", "preview-stage-destroy", "pulumi destroy")
    missing = """if [ "$1" = stack ]; then echo "error: no stack named '$3' found" >&2; exit 255; fi"""
    never = run_step(script, tmp_path, missing, STAGE="pr-5")
    assert never.returncode == 0 and "never deployed" in never.stdout
    calls = tmp_path / "calls"
    done = run_step(script, tmp_path, f'echo "$*" >> {calls}', STAGE="pr-5")
    assert done.returncode == 0
    assert calls.read_text().splitlines()[-2:] == ["destroy --stack pr-5 --yes --non-interactive",
                                                   "stack rm pr-5 --yes --non-interactive"]
    failed = run_step(script, tmp_path, 'if [ "$1" = destroy ]; then exit 255; fi', STAGE="pr-5")
    assert failed.returncode != 0


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


def test_preview_stages_join_the_shared_network_when_the_bootstrap_made_one(tmp_path):
    script = step_script("pull-request.yml", "preview-stage", "pulumi up")
    calls = tmp_path / "calls"
    shared = '{"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0aaaaaaaaaaaaaaaa"]}'
    result = run_step(script, tmp_path, f'echo "$*" >> {calls}', STAGE="pr-5", PREVIEW_SHARED_VPC=shared)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = calls.read_text().splitlines()
    assert lines[-2] == f"config set --stack pr-5 harbor:sharedVpc {shared}"
    assert lines[-1].startswith("up --stack pr-5 ")
    calls.unlink()
    alone = run_step(script, tmp_path, f'echo "$*" >> {calls}', STAGE="pr-5", PREVIEW_SHARED_VPC="")
    assert alone.returncode == 0 and not any("config set" in line for line in calls.read_text().splitlines())


def test_the_readme_names_every_one_time_step_the_workflows_depend_on():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Deploy from GitHub")
    section = readme[start:readme.index("\n## ", start + 5)]
    # every variable a workflow reads, or the bootstrap outputs that name it by pattern
    for name in sorted({n for path in FILES for n in re.findall(r"vars\.([A-Z_]+)", path.read_text())}):
        generic = re.sub(r"_(DEV|STAGING|PROD|PREVIEW)$", "_<ENV>", name)
        assert name in section or generic in section, name
    # every GitHub environment a job runs in, and the consent label
    environments = {"dev", "staging", "prod", "preview"}
    for env in environments:
        assert f"`{env}`" in section, env
    assert "gh label create preview" in section
    for step in ("quotas", "Elastic IPs", "cache policies", "response headers", "infra secret set SecretKey --fallback",
                 "Account layout", "prod in an AWS account of its own", "keyUsers", "previewNetwork"):
        assert step in section, step
