"""`infra secret`: set/get/list/load/remove round-trip against moto_server on 127.0.0.1."""

from __future__ import annotations

import gc
import io
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

import infra.secrets_cli as secrets_cli
from infra.cli import main as infra_main

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The standard AWS variables pointed at the local moto server; no real profile can leak in."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.chdir(ROOT)
    return moto_endpoint


def ssm(endpoint: str) -> Any:
    return boto3.client("ssm", region_name="us-east-1", endpoint_url=endpoint)


def infra(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    # Earlier Pulumi tests in this process leave coroutines whose warnings land on stderr
    # when they are collected; collect them now and keep only what the command printed.
    gc.collect()
    capsys.readouterr()
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = infra_main(["secret", *argv])
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    ours, after_warning = [], False
    for line in err.splitlines(keepends=True):
        is_warning = "Warning: " in line  # "<file>:<n>: RuntimeWarning: ..." and its source line
        if not is_warning and not (after_warning and line.startswith("  ")):
            ours.append(line)
        after_warning = is_warning
    return code, out, "".join(ours)


# -- round trips ------------------------------------------------------------------------------


def test_set_from_stdin_stores_a_secure_string_at_the_stage_path_and_get_reads_it(aws_env, capsys):
    code, out, err = infra(capsys, "set", "StripeSecretKey", "--stage", "rt-stdin", stdin="sk_test_123\n")
    assert (code, err) == (0, "")
    assert out.strip() == "set StripeSecretKey for stage 'rt-stdin' (/harbor/rt-stdin/StripeSecretKey)"
    assert "sk_test_123" not in out

    stored = ssm(aws_env).get_parameter(Name="/harbor/rt-stdin/StripeSecretKey", WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", "sk_test_123")  # the final newline is not kept

    code, out, _ = infra(capsys, "get", "StripeSecretKey", "--stage", "rt-stdin")
    assert (code, out) == (0, "sk_test_123\n")


def test_set_with_a_value_argument_overwrites(aws_env, capsys):
    infra(capsys, "set", "ResendApiKey", "re_1", "--stage", "rt-over")
    infra(capsys, "set", "ResendApiKey", "re_2", "--stage", "rt-over")
    assert infra(capsys, "get", "ResendApiKey", "--stage", "rt-over")[1] == "re_2\n"


def test_list_masks_values_unless_reveal_and_shows_what_comes_from_the_fallback(aws_env, capsys):
    infra(capsys, "set", "ClerkSecretKey", "sk_clerk", "--stage", "rt-list")
    infra(capsys, "set", "DvlaApiKey", "dvla_shared", "--fallback")

    code, out, _ = infra(capsys, "list", "--stage", "rt-list")
    assert code == 0
    assert "sk_clerk" not in out and "dvla_shared" not in out
    lines = out.splitlines()
    assert any(line.split() == ["ClerkSecretKey", "********"] for line in lines)
    assert any("DvlaApiKey" in line and "(from /harbor/.fallback/)" in line for line in lines)

    code, out, _ = infra(capsys, "list", "--stage", "rt-list", "--reveal")
    assert "sk_clerk" in out and "dvla_shared" in out


def test_get_falls_back_like_the_program_and_says_so(aws_env, capsys):
    infra(capsys, "set", "R2Endpoint", "https://shared.r2", "--fallback")
    code, out, err = infra(capsys, "get", "R2Endpoint", "--stage", "rt-fallback")
    assert (code, out) == (0, "https://shared.r2\n")
    assert "comes from the fallback /harbor/.fallback/R2Endpoint" in err


def test_load_sets_every_pair_of_a_env_file_and_reports_them(aws_env, capsys, tmp_path):
    env_file = tmp_path / ".env.dev"
    env_file.write_text(
        "# seed 001 keeps its keys in a .env\n"
        "export STRIPE_KEY=sk_test_abc\n"
        'RESEND_KEY="re with spaces # not a comment"\n'
        "DVLA_KEY=dvla # trailing comment\n"
        "\n"
        "MULTI=\"line1\\nline2\"\n"
    )
    code, out, err = infra(capsys, "load", str(env_file), "--stage", "rt-load")
    assert (code, err) == (0, "")
    assert out.strip() == (
        f"set 4 secret(s) for stage 'rt-load' from {env_file}: STRIPE_KEY, RESEND_KEY, DVLA_KEY, MULTI"
    )
    client = ssm(aws_env)
    stored = {
        p["Name"].rsplit("/", 1)[-1]: p["Value"]
        for p in client.get_parameters_by_path(Path="/harbor/rt-load", WithDecryption=True)["Parameters"]
    }
    assert stored == {
        "STRIPE_KEY": "sk_test_abc",
        "RESEND_KEY": "re with spaces # not a comment",
        "DVLA_KEY": "dvla",
        "MULTI": "line1\nline2",
    }


def test_load_with_a_bad_line_sets_nothing_and_names_the_line(aws_env, capsys, tmp_path):
    env_file = tmp_path / "bad.env"
    env_file.write_text("GOOD=1\nbad-name=2\nNOEQUALS\n")
    code, out, err = infra(capsys, "load", str(env_file), "--stage", "rt-badload")
    assert code == 1 and out == ""
    assert f"{env_file}:2: 'bad-name' is not a valid secret name" in err
    assert f"{env_file}:3: expected NAME=value" in err
    assert ssm(aws_env).get_parameters_by_path(Path="/harbor/rt-badload")["Parameters"] == []


def test_remove_deletes_and_a_second_remove_says_it_is_not_set(aws_env, capsys):
    infra(capsys, "set", "SecretKey", "k", "--stage", "rt-remove")
    code, out, _ = infra(capsys, "remove", "SecretKey", "--stage", "rt-remove")
    assert code == 0 and "removed SecretKey from stage 'rt-remove'" in out

    code, _, err = infra(capsys, "get", "SecretKey", "--stage", "rt-remove")
    assert code == 1
    assert err.strip() == (
        "error: SecretKey is not set for stage 'rt-remove'; set it with: infra secret set SecretKey --stage rt-remove"
    )
    code, _, err = infra(capsys, "remove", "SecretKey", "--stage", "rt-remove")
    assert code == 1 and "nothing to remove" in err


def test_fallback_values_live_at_the_fallback_path(aws_env, capsys):
    infra(capsys, "set", "StripeWebhookSecret", "whsec_1", "--fallback")
    stored = ssm(aws_env).get_parameter(Name="/harbor/.fallback/StripeWebhookSecret", WithDecryption=True)
    assert stored["Parameter"]["Value"] == "whsec_1"


# -- mistakes and failures: one line, non-zero, no traceback --------------------------------------


@pytest.mark.parametrize("name", ["bad-name", "9Lives", "Stripe.Key"])
def test_invalid_names_are_refused_before_calling_aws(aws_env, capsys, name):
    code, out, err = infra(capsys, "set", name, "v", "--stage", "dev")
    assert code == 1 and out == ""
    assert err.startswith(f"error: {name!r} is not a valid secret name: use a letter, then letters")


def test_invalid_stage_name_is_refused(aws_env, capsys):
    code, _, err = infra(capsys, "list", "--stage", "Prod")
    assert code == 1 and "'Prod' is not a stage name" in err


def test_empty_value_is_refused(aws_env, capsys):
    code, _, err = infra(capsys, "set", "SecretKey", "--stage", "dev", stdin="\n")
    assert code == 1 and "the value is empty" in err


def test_unreachable_endpoint_is_one_readable_line(aws_env, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code, _, err = infra(capsys, "list", "--stage", "dev")
    assert code == 1
    assert err.count("\n") == 1 and "is unreachable" in err and "AWS_ENDPOINT_URL" in err


def test_missing_credentials_are_one_readable_line(aws_env, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _, err = infra(capsys, "list", "--stage", "dev")
    assert code == 1
    assert err.startswith("error: cannot list secrets: no AWS credentials found")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", "access denied by AWS (AccessDeniedException)"),
        ("ThrottlingException", "SSM is throttling requests"),
        ("ExpiredTokenException", "your AWS credentials are invalid or expired"),
    ],
)
def test_ssm_errors_become_one_readable_line(aws_env, capsys, monkeypatch, code, expected):
    client = boto3.client("ssm", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("put_parameter", service_error_code=code, service_message="denied by test")
    stubber.activate()
    monkeypatch.setattr(secrets_cli, "_client", lambda target: client)
    status, _, err = infra(capsys, "set", "SecretKey", "v", "--stage", "dev")
    assert status == 1
    assert err.startswith("error: cannot set secrets: ") and expected in err
    assert "Traceback" not in err


def test_console_command_reads_stdin_and_never_prints_a_traceback(aws_env):
    command = [str(ROOT / ".venv/bin/infra"), "secret"]
    done = subprocess.run(
        [*command, "set", "ClerkWebhookSecret", "--stage", "rt-console"],
        input="whsec_console", capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    got = subprocess.run(
        [*command, "get", "ClerkWebhookSecret", "--stage", "rt-console"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )
    assert got.stdout == "whsec_console\n"
    failed = subprocess.run(
        [*command, "get", "Nope", "--stage", "rt-console"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("error: Nope is not set for stage 'rt-console'")


# -- input that is not what `set` and `load` expect -------------------------------------------------


def test_set_with_stdin_closed_says_how_to_give_the_value(aws_env, capsys, monkeypatch):
    # Python sets sys.stdin to None when the process starts with descriptor 0 closed.
    monkeypatch.setattr(sys, "stdin", None)
    code, out, err = infra(capsys, "set", "SecretKey", "--stage", "rt-closed")
    assert (code, out) == (1, "")
    assert err == (
        "error: SecretKey: no value given and stdin is closed; give it after the name or pipe it in: "
        "infra secret set SecretKey --stage rt-closed < value.txt\n"
    )


def test_console_set_with_stdin_closed_fails_in_one_line(aws_env):
    import os

    done = subprocess.run(
        [str(ROOT / ".venv/bin/infra"), "secret", "set", "SecretKey", "--stage", "rt-closed"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
        stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0),
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "stdin is closed" in done.stderr


def test_load_of_a_binary_file_names_the_file_and_line_and_sets_nothing(aws_env, capsys, tmp_path):
    png = tmp_path / "logo.png"
    png.write_bytes(b"GOOD=1\nALSO=2\n\x89PNG\r\n\x1a\n\x00\x00")
    code, out, err = infra(capsys, "load", str(png), "--stage", "rt-binary")
    assert (code, out) == (1, "")
    assert err == (
        f"error: {png}:3: not UTF-8 text (byte 0x89); give a .env file of NAME=value lines; nothing was set\n"
    )
    text_with_nul = tmp_path / "nul.env"
    text_with_nul.write_bytes(b"GOOD=1\nBAD=a\x00b\n")
    code, _, err = infra(capsys, "load", str(text_with_nul), "--stage", "rt-binary")
    assert code == 1 and err.startswith(f"error: {text_with_nul}:2: holds a NUL byte")
    assert ssm(aws_env).get_parameters_by_path(Path="/harbor/rt-binary")["Parameters"] == []


def test_load_with_malformed_lines_reports_them_all_in_one_line(aws_env, capsys, tmp_path):
    env_file = tmp_path / "bad.env"
    env_file.write_text("GOOD=1\nbad-name=2\nNOEQUALS\nQUOTED=\"open\n")
    code, out, err = infra(capsys, "load", str(env_file), "--stage", "rt-badload")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"error: nothing was set; fix {env_file}:2: 'bad-name' is not a valid secret name")
    assert f"; {env_file}:3: expected NAME=value; {env_file}:4: the value opens a \" quote" in err


def test_load_of_a_missing_file_is_one_line(aws_env, capsys, tmp_path):
    code, _, err = infra(capsys, "load", str(tmp_path / "nope.env"), "--stage", "rt-missing")
    assert code == 1 and err == f"error: cannot read {tmp_path / 'nope.env'}: No such file or directory\n"


# -- list never decrypts unless asked --------------------------------------------------------------


@pytest.mark.parametrize(("flags", "decrypt"), [((), False), (("--reveal",), True)])
def test_list_asks_ssm_to_decrypt_only_with_reveal(aws_env, capsys, monkeypatch, flags, decrypt):
    infra(capsys, "set", "SecretKey", "k-1", "--stage", "rt-decrypt")
    infra(capsys, "set", "DvlaApiKey", "fallback-1", "--fallback")
    sent: list[dict[str, Any]] = []
    make_client = secrets_cli._client

    def recording_client(target):
        client = make_client(target)
        client.meta.events.register(
            "provide-client-params.ssm.*", lambda params, model, **_: sent.append({"op": model.name, **params})
        )
        return client

    monkeypatch.setattr(secrets_cli, "_client", recording_client)
    code, out, _ = infra(capsys, "list", "--stage", "rt-decrypt", *flags)
    assert code == 0
    assert {call["op"] for call in sent} == {"GetParametersByPath"}
    assert [call["WithDecryption"] for call in sent] == [decrypt] * len(sent) and len(sent) == 2
    assert ("k-1" in out) is decrypt and ("fallback-1" in out) is decrypt
