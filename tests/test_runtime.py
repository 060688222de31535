"""harbor_runtime: the pulumi-free helpers handlers import, run against moto."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from components.aws.packaging import PackageSpec, build_archive
from harbor_runtime import DatabaseLinkError, database_url
from harbor_runtime.database import CACHE_SECONDS, clear_cache

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "p@ss/w:rd%?#&= 1"  # what a generated password may contain


@pytest.fixture
def secrets(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    clear_cache()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")
    clear_cache()


def link(client, secret: dict | str) -> dict:
    value = secret if isinstance(secret, str) else json.dumps(secret)
    arn = client.create_secret(Name="rds!cluster-abc", SecretString=value)["ARN"]
    return {"host": "db.cluster-x.us-east-1.rds.amazonaws.com", "port": 5432, "database": "reggie",
            "username": "reggie_admin", "secretArn": arn}


def test_database_url_reads_the_password_at_run_time_and_url_encodes_it(secrets):
    url = database_url(link(secrets, {"username": "reggie_admin", "password": PASSWORD}))
    assert url == (
        "postgresql://reggie_admin:p%40ss%2Fw%3Ard%25%3F%23%26%3D%201"
        "@db.cluster-x.us-east-1.rds.amazonaws.com:5432/reggie?sslmode=require"
    )


def test_the_url_round_trips_to_the_real_password(secrets):
    from urllib.parse import unquote, urlsplit

    url = database_url(link(secrets, {"username": "a@b", "password": PASSWORD}), driver="postgresql+psycopg",
                       sslmode=None)
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg" and parts.query == ""
    assert (unquote(parts.username), unquote(parts.password)) == ("a@b", PASSWORD)
    assert (parts.hostname, parts.port, parts.path) == ("db.cluster-x.us-east-1.rds.amazonaws.com", 5432, "/reggie")


def test_an_sst_sdk_link_object_works_like_a_dict(secrets):
    data = link(secrets, {"username": "u", "password": "p"})
    assert database_url(SimpleNamespace(**data)).startswith("postgresql://u:p@")


def test_the_password_is_cached_and_a_rotation_is_seen_after_the_cache_time(secrets):
    data = link(secrets, {"username": "u", "password": "first"})
    now = [1000.0]
    assert ":first@" in database_url(data, clock=lambda: now[0])
    rotated = json.dumps({"username": "u", "password": "second"})
    secrets.put_secret_value(SecretId=data["secretArn"], SecretString=rotated)
    now[0] += CACHE_SECONDS - 1
    assert ":first@" in database_url(data, clock=lambda: now[0])
    now[0] += 2
    assert ":second@" in database_url(data, clock=lambda: now[0])


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("secretArn"), "the database link has no secretArn"),
        (lambda d: d.update(host=""), "the database link has no host"),
    ],
)
def test_an_incomplete_link_is_named(secrets, change, problem):
    data = link(secrets, {"username": "u", "password": "p"})
    change(data)
    with pytest.raises(DatabaseLinkError, match=problem):
        database_url(data)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("not json", "is not a JSON object"),
        ('["a"]', "is not a JSON object"),
        ({"username": "u"}, "has no username/password"),
    ],
)
def test_a_secret_without_credentials_is_named(secrets, secret, problem):
    with pytest.raises(DatabaseLinkError, match=problem):
        database_url(link(secrets, secret))


def test_something_that_is_not_a_link_is_refused():
    with pytest.raises(DatabaseLinkError, match="is not a database link"):
        database_url(object())


def test_the_runtime_package_imports_without_pulumi():
    code = "import sys, harbor_runtime; assert not any(m.split('.')[0] == 'pulumi' for m in sys.modules), 'pulumi'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_a_handler_that_imports_the_runtime_gets_it_in_its_archive(tmp_path):
    uses = tmp_path / "uses"
    uses.mkdir()
    (uses / "handler.py").write_text("from harbor_runtime import database_url\n\ndef main(e, c):\n    return 1\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "handler.py").write_text("def main(e, c):\n    return 1\n")

    with_runtime = build_archive(PackageSpec(source=uses, cache=tmp_path / "cache"))
    without = build_archive(PackageSpec(source=plain, cache=tmp_path / "cache"))

    names = set(zipfile.ZipFile(with_runtime.path).namelist())
    assert {"handler.py", "harbor_runtime/__init__.py", "harbor_runtime/database.py"} <= names
    assert zipfile.ZipFile(without.path).namelist() == ["handler.py"]
