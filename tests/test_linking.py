"""Linking: the encoder produces what SST's runtime SDKs read, proven with the real sst-sdk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from components.core.linking import LinkError, check_links, derive_key, encode_links

LINKS = {
    "Table": {"name": "harbor-dev-Table", "type": "sst.aws.Dynamo"},
    "Uploads": {"name": "harbor-dev-uploads-1a2b3c4d", "type": "sst.aws.Bucket"},
    "StripeSecretKey": {"value": "sk_test_ü/€+\"quoted\"", "type": "sst.sst.Secret"},
}

READER = """
import json
from sst import Resource
print(json.dumps({
    "table": Resource.Table.name,
    "bucket": Resource.Uploads.name,
    "secret": Resource.StripeSecretKey.value,
    "app": [Resource.App.name, Resource.App.stage],
}))
"""


def read_with_sst_sdk(tmp_path, bundle) -> dict:
    key_file = tmp_path / bundle.file_name
    key_file.write_bytes(bundle.file_bytes)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SST_")}
    env.update(bundle.environment)
    env["SST_KEY_FILE"] = str(key_file)
    result = subprocess.run([sys.executable, "-c", READER], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_sst_sdk_reads_back_every_linked_value(tmp_path):
    bundle = encode_links(LINKS, app="harbor", stage="dev", key_file="/var/task/resource.enc")
    values = read_with_sst_sdk(tmp_path, bundle)
    assert values == {
        "table": "harbor-dev-Table",
        "bucket": "harbor-dev-uploads-1a2b3c4d",
        "secret": "sk_test_ü/€+\"quoted\"",
        "app": ["harbor", "dev"],
    }


def test_linked_values_never_appear_in_the_environment_or_the_file_in_plain_text():
    bundle = encode_links(LINKS, app="harbor", stage="dev", key_file="/var/task/resource.enc")
    assert set(bundle.environment) == {"SST_RESOURCE_App", "SST_KEY", "SST_KEY_FILE"}
    assert b"harbor-dev-Table" not in bundle.file_bytes and b"sk_test" not in bundle.file_bytes
    assert "sk_test" not in json.dumps(bundle.environment)


def test_environment_stays_small_however_many_links():
    many = {f"Table{i}": {"name": f"harbor-prod-Table{i}" * 4, "type": "sst.aws.Dynamo"} for i in range(200)}
    bundle = encode_links(many, app="harbor", stage="prod", key_file="/var/task/resource.enc")
    assert sum(len(k) + len(v) for k, v in bundle.environment.items()) < 200


def test_same_links_give_the_same_file_and_different_links_a_different_key():
    first = encode_links(LINKS, app="harbor", stage="dev", key_file="resource.enc")
    again = encode_links(dict(reversed(list(LINKS.items()))), app="harbor", stage="dev", key_file="resource.enc")
    assert first.file_bytes == again.file_bytes and first.environment == again.environment
    changed = encode_links({**LINKS, "Table": {"name": "other"}}, app="harbor", stage="dev", key_file="x")
    assert changed.environment["SST_KEY"] != first.environment["SST_KEY"]
    assert len(derive_key(b"x")) == 32


def test_app_is_a_reserved_link_name():
    with pytest.raises(LinkError, match="'App' is reserved"):
        encode_links({"App": {}}, app="harbor", stage="dev", key_file="x")


def test_only_linkable_things_can_be_linked():
    with pytest.raises(LinkError, match="cannot be linked"):
        check_links(["not a component"])


def test_the_stage_exports_every_linkable_resource_as_one_secret_output(build):
    # infra shell reads a deployed stage's links from this output; code reads links by name,
    # so a name two linkable components share is left out rather than guessed.
    from components import Bucket, Dynamo, Queue
    from infra.harness import SECRET

    def body() -> None:
        Bucket("Uploads")
        Dynamo("Orders", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        Queue("Orders")
        Queue("Jobs")

    plan = build(body)
    assert plan.outputs["links"] == SECRET
    links = plan.revealed["links"]
    assert sorted(links) == ["Jobs", "Uploads"]
    assert links["Uploads"] == {"name": plan.one("aws:s3/bucket:Bucket").inputs["bucket"], "type": "sst.aws.Bucket"}
    assert links["Jobs"]["type"] == "sst.aws.Queue" and links["Jobs"]["url"].endswith("harbor-dev-Jobs")
