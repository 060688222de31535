"""DNS adapters (Route 53, Cloudflare) and the ACM certificate helper, through the mocks."""

from __future__ import annotations

from typing import ClassVar

import pytest
from conftest import APP, stage_config

from components.aws.dns import (
    DNS_ROLES,
    CloudflareDns,
    Route53Dns,
    dns_for_stage,
    validated_certificate,
)
from components.core.base import Component, ComponentError
from infra.harness import run_mocked
from infra.mocks import MockContext, short_id
from stages import StageConfig

RECORD = "aws:route53/record:Record"
CF_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
CERT = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
TARGET = "d-abc123.execute-api.us-east-1.amazonaws.com"
R53_ZONE_ID = "Z" + short_id("zone", "getreggie.io", length=20).upper()
CF_ZONE_ID = short_id("cf-zone", "getreggie.io", length=32)


class Site(Component):
    """A stand-in for the components that own domains (API, Next.js)."""

    type_token: ClassVar[str] = "harbor:test:Site"
    transformable: ClassVar[tuple[str, ...]] = DNS_ROLES


def _alias(name: str = "api.getreggie.io"):
    def body() -> None:
        site = Site("Api")
        dns = dns_for_stage(site.stage)
        assert dns is not None
        dns.alias(site, "api", name, TARGET, "Z1UJRXOUMOOFQ8")

    return body


def test_route53_alias_creates_a_and_aaaa_alias_records_in_the_looked_up_zone(build):
    plan = build(_alias(), stage="prod", domain="getreggie.io", dns="route53")

    records = plan.of_type(RECORD)
    assert sorted(r.inputs["type"] for r in records) == ["A", "AAAA"]
    for record in records:
        assert record.inputs["zoneId"] == R53_ZONE_ID
        assert record.inputs["name"] == "api.getreggie.io"
        assert record.inputs["aliases"] == [
            {"name": TARGET, "zoneId": "Z1UJRXOUMOOFQ8", "evaluateTargetHealth": False}
        ]
        assert record.parent == plan.one("harbor:test:Site").urn
    assert not plan.of_type(CF_RECORD)


def test_cloudflare_alias_is_one_proxied_cname_with_automatic_ttl(build):
    plan = build(_alias(), stage="prod", domain="getreggie.io", dns="cloudflare", dnsProxied=True)

    record = plan.one(CF_RECORD)
    assert record.inputs["zoneId"] == CF_ZONE_ID
    assert record.inputs["type"] == "CNAME"
    assert record.inputs["name"] == "api.getreggie.io"
    assert record.inputs["content"] == TARGET
    assert record.inputs["ttl"] == 1
    assert record.inputs["proxied"] is True
    assert not plan.of_type(RECORD)


def test_cloudflare_alias_is_not_proxied_unless_the_stage_asks(build):
    plan = build(_alias(), stage="dev", domain="getreggie.io", dns="cloudflare")

    assert plan.one(CF_RECORD).inputs["proxied"] is False


def test_alias_outside_the_zone_is_refused_with_the_fix():
    def body() -> None:
        from components import start_app

        start_app()
        _alias("api.example.com")()

    with pytest.raises(ComponentError, match=r"not inside the zone 'getreggie\.io'"):
        run_mocked(body, APP, "dev", stage_config("dev", domain="getreggie.io"))


def _certificate(domain: str, alternative_names: tuple[str, ...] = (), region: str | None = None):
    def body() -> None:
        site = Site("Web")
        validated_certificate(site, "web", domain, alternative_names, region=region)

    return body


def test_certificate_is_dns_validated_with_one_record_per_distinct_name(build):
    plan = build(
        _certificate("getreggie.io", ("*.getreggie.io", "admin.getreggie.io")),
        stage="prod",
        domain="getreggie.io",
    )

    cert = plan.one(CERT)
    assert cert.inputs["domainName"] == "getreggie.io"
    assert cert.inputs["validationMethod"] == "DNS"
    assert cert.inputs["subjectAlternativeNames"] == ["*.getreggie.io", "admin.getreggie.io"]
    # getreggie.io and *.getreggie.io share ACM's record: two names, two records.
    records = plan.of_type(RECORD)
    assert len(records) == 2
    assert {r.inputs["type"] for r in records} == {"CNAME"}
    assert all(r.inputs["zoneId"] == R53_ZONE_ID for r in records)
    assert all(r.inputs["records"][0].endswith(".acm-validations.aws.") for r in records)
    assert {r.inputs["name"] for r in records} == {
        f"_{short_id(d, length=32)}.{d}." for d in ("getreggie.io", "admin.getreggie.io")
    }
    validation = plan.one(VALIDATION)
    assert sorted(validation.inputs["validationRecordFqdns"]) == sorted(
        r.inputs["name"].rstrip(".") for r in records
    )
    assert set(validation.dependencies) >= {r.urn for r in records}


def test_certificate_for_cloudfront_is_requested_in_us_east_1(build):
    plan = build(
        _certificate("getreggie.io", region="us-east-1"),
        stage="prod",
        domain="getreggie.io",
        region="eu-west-1",
    )

    cert = plan.one(CERT)
    validation = plan.one(VALIDATION)
    assert "aws-us-east-1" in cert.provider
    assert "aws-us-east-1" in validation.provider
    assert cert.inputs["domainName"] == "getreggie.io"
    # The validation record goes to the stage's zone, whatever the certificate's region.
    assert "aws-us-east-1" not in plan.one(RECORD).provider


def test_certificate_in_the_stage_region_uses_the_stage_provider(build):
    plan = build(_certificate("api.getreggie.io"), stage="prod", domain="getreggie.io")

    assert "aws-us-east-1" not in plan.one(CERT).provider


def test_certificate_validation_through_cloudflare_is_never_proxied(build):
    plan = build(
        _certificate("getreggie.io"),
        stage="prod",
        domain="getreggie.io",
        dns="cloudflare",
        dnsProxied=True,
    )

    record = plan.one(CF_RECORD)
    assert record.inputs["type"] == "CNAME"
    assert record.inputs["proxied"] is False
    assert not record.inputs["name"].endswith(".")
    assert record.inputs["content"].endswith(".acm-validations.aws")
    assert plan.one(VALIDATION).inputs["validationRecordFqdns"] == [record.inputs["name"]]


def test_certificate_without_a_stage_domain_names_the_setting():
    def body() -> None:
        from components import start_app

        start_app()
        _certificate("api.getreggie.io")()

    with pytest.raises(ComponentError, match="set harbor:domain"):
        run_mocked(body, APP, "dev", stage_config("dev"))


@pytest.mark.parametrize("provider", ["route53", "cloudflare"])
def test_unknown_zone_stops_the_program_naming_the_zone_and_the_setting(provider):
    def body() -> None:
        from components import start_app

        start_app()
        _alias()()

    context = MockContext(known_zones={"example.com"})
    with pytest.raises(ComponentError) as error:
        run_mocked(
            body, APP, "dev", stage_config("dev", domain="getreggie.io", dns=provider), context=context
        )
    message = str(error.value)
    assert "DNS zone 'getreggie.io' was not found" in message
    assert "harbor:zone" in message and "Pulumi.dev.yaml" in message


def test_known_zone_defaults_to_the_stage_zone_setting(build):
    plan = build(_alias("api.dev.getreggie.io"), stage="dev", domain="getreggie.io", zone="dev.getreggie.io")

    assert plan.of_type(RECORD)[0].inputs["zoneId"] == (
        "Z" + short_id("zone", "dev.getreggie.io", length=20).upper()
    )


def test_records_follow_the_owners_transform(build):
    def body() -> None:
        site = Site("Api", transform={"dns_record": {"allow_overwrite": True}})
        dns = dns_for_stage(site.stage)
        assert dns is not None
        dns.alias(site, "api", "api.getreggie.io", TARGET, "Z1")

    plan = build(body, stage="dev", domain="getreggie.io")

    assert all(r.inputs["allowOverwrite"] is True for r in plan.of_type(RECORD))


def _stage(**settings: object) -> StageConfig:
    return StageConfig.model_validate({"name": "dev", "app": APP, **settings})


def test_dns_for_stage_picks_the_adapter_the_stage_names():
    assert dns_for_stage(_stage()) is None
    route53 = dns_for_stage(_stage(domain="getreggie.io"))
    assert isinstance(route53, Route53Dns) and route53.zone_name == "getreggie.io"
    cloudflare = dns_for_stage(
        _stage(domain="getreggie.io", dns="cloudflare", zone="Getreggie.io.", dnsProxied=True)
    )
    assert isinstance(cloudflare, CloudflareDns)
    assert cloudflare.zone_name == "getreggie.io" and cloudflare.proxied is True
