"""DNS adapters (Route 53, Cloudflare) and ACM certificates validated through them.

Components that serve a custom domain (the API, the Next.js sites) never talk to a
DNS provider directly. They ask the stage for its adapter and use two operations::

    dns = dns_for_stage(self.stage)          # None when the stage has no domain
    if dns is not None:
        cert_arn = validated_certificate(self, "api", "api.getreggie.io")
        dns.alias(self, "api", "api.getreggie.io", target_domain, target_zone_id)

Interface (every adapter):

* ``alias(owner, key, name, target_domain, target_zone_id) -> Resource``: point ``name``
  at an AWS endpoint (API Gateway domain, CloudFront distribution). Route 53 creates
  an A and an AAAA alias record (the AAAA is returned); Cloudflare creates one CNAME
  (``ttl`` 1 = automatic, proxied as configured; Cloudflare has no use for the zone id).
* ``validation_record(owner, key, record_name, record_type, record_value) -> Resource``:
  the record ACM asks for to prove the domain is ours. Never proxied.
* ``zone_id(owner) -> Output[str]``: the zone, looked up by name once per adapter.

``validated_certificate(owner, key, domain, alternative_names=(), region=None)``
requests an ACM certificate with DNS validation in ``region`` (default: the stage's;
CloudFront needs ``"us-east-1"``), writes one validation record per distinct name
through the stage's adapter and waits for ACM: it returns the certificate ARN only
once the certificate is issued.

The records are children of ``owner`` created with ``owner.child``; list the roles
:data:`DNS_ROLES` in the owner's ``transformable`` so users can transform them.
An unknown zone stops the program with a message naming the zone and the stage
setting to change, not the provider's raw lookup failure.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pulumi
import pulumi_aws as aws

from components.core.base import ComponentError
from components.core.context import current_app

if TYPE_CHECKING:
    from components.core.base import Component
    from stages import StageConfig

T = TypeVar("T")

RECORD_ROLE = "dns_record"
CERTIFICATE_ROLE = "certificate"
VALIDATION_ROLE = "certificate_validation"
DNS_ROLES: tuple[str, ...] = (RECORD_ROLE, CERTIFICATE_ROLE, VALIDATION_ROLE)
"""Child roles the DNS helpers create; owners add them to ``transformable``."""

VALIDATION_TTL = 60


def explain_failure(output: pulumi.Output[T], explain: Callable[[Exception], str]) -> pulumi.Output[T]:
    """``output``, but a failure to compute it becomes a ``ComponentError`` saying ``explain``.

    Invokes fail with the provider's words ("no matching Route 53 Hosted Zone found");
    this turns them into a message that names the setting to fix.
    """

    async def settle() -> tuple[Any, ...]:
        try:
            return (
                await output.resources(),
                await output.future(with_unknowns=True),
                await output.is_known(),
                await output.is_secret(),
            )
        except ComponentError:
            raise
        except Exception as error:  # the invoke's own error type varies by provider
            raise ComponentError(explain(error)) from None

    settled = asyncio.ensure_future(settle())

    async def part(index: int) -> Any:
        return (await settled)[index]

    return pulumi.Output(part(0), part(1), part(2), part(3))


def _within_zone(owner: Component, name: pulumi.Input[str], zone: str) -> None:
    """Refuse, at plan time, a record name the zone cannot hold."""
    if not isinstance(name, str):
        return
    bare = name.rstrip(".").lower()
    if bare != zone and not bare.endswith("." + zone):
        raise owner.fail(
            f"DNS name {name!r} is not inside the zone {zone!r}; use a name under {zone} "
            "or set harbor:zone to the zone that holds it"
        )


class DnsAdapter(ABC):
    """One DNS zone at one provider."""

    provider: Literal["route53", "cloudflare"]
    _label: str
    """How error messages name the provider."""

    def __init__(self, zone_name: str) -> None:
        zone = zone_name.rstrip(".").lower()
        if not zone or "." not in zone:
            raise ComponentError(f"DNS zone {zone_name!r} is not a domain name like example.com")
        self.zone_name = zone
        self._zone_id: pulumi.Output[str] | None = None

    def zone_id(self, owner: Component) -> pulumi.Output[str]:
        """The zone's id, looked up by name on first use (``owner`` parents the lookup)."""
        if self._zone_id is None:
            self._zone_id = explain_failure(self._lookup(owner), self._unknown_zone)
        return self._zone_id

    def _unknown_zone(self, error: Exception) -> str:
        stage = current_app().stage
        return (
            f"DNS zone {self.zone_name!r} was not found at {self._label} ({error}). "
            f"Create the zone there, or fix harbor:domain / harbor:zone / harbor:dns in "
            f"Pulumi.{stage.name}.yaml (now dns: {stage.dns}, zone: {stage.dns_zone})."
        )

    @abstractmethod
    def _lookup(self, owner: Component) -> pulumi.Output[str]: ...

    @abstractmethod
    def alias(
        self,
        owner: Component,
        key: str,
        name: pulumi.Input[str],
        target_domain: pulumi.Input[str],
        target_zone_id: pulumi.Input[str],
    ) -> pulumi.Resource:
        """Point ``name`` at an AWS endpoint; returns the record created."""

    @abstractmethod
    def validation_record(
        self,
        owner: Component,
        key: str,
        record_name: pulumi.Input[str],
        record_type: pulumi.Input[str],
        record_value: pulumi.Input[str],
    ) -> pulumi.Resource:
        """The record ACM reads to validate a certificate."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.zone_name!r})"


class Route53Dns(DnsAdapter):
    """A public Route 53 hosted zone, found by name.

    Example::

        Route53Dns("getreggie.io").alias(api, "api", "api.getreggie.io", domain, zone)
    """

    provider = "route53"
    _label = "Route 53 (public hosted zones)"

    def _lookup(self, owner: Component) -> pulumi.Output[str]:
        zone = aws.route53.get_zone_output(
            name=self.zone_name,
            private_zone=False,
            opts=pulumi.InvokeOutputOptions(parent=owner),
        )
        return zone.zone_id

    def alias(
        self,
        owner: Component,
        key: str,
        name: pulumi.Input[str],
        target_domain: pulumi.Input[str],
        target_zone_id: pulumi.Input[str],
    ) -> pulumi.Resource:
        _within_zone(owner, name, self.zone_name)
        zone_id = self.zone_id(owner)
        record: pulumi.Resource | None = None
        # AAAA as well as A: API Gateway and CloudFront both answer on IPv6.
        for record_type in ("A", "AAAA"):
            record = owner.child(
                RECORD_ROLE,
                aws.route53.Record,
                {
                    "zone_id": zone_id,
                    "name": name,
                    "type": record_type,
                    "aliases": [
                        {
                            "name": target_domain,
                            "zone_id": target_zone_id,
                            "evaluate_target_health": False,
                        }
                    ],
                },
                key=f"{key}-{record_type.lower()}",
            )
        assert record is not None
        return record

    def validation_record(
        self,
        owner: Component,
        key: str,
        record_name: pulumi.Input[str],
        record_type: pulumi.Input[str],
        record_value: pulumi.Input[str],
    ) -> pulumi.Resource:
        return owner.child(
            RECORD_ROLE,
            aws.route53.Record,
            {
                "zone_id": self.zone_id(owner),
                "name": record_name,
                "type": record_type,
                "records": [record_value],
                "ttl": VALIDATION_TTL,
                # ACM gives every certificate for a name the same record, so a second
                # certificate for the same domain (API and site) must not fail on it.
                "allow_overwrite": True,
            },
            key=key,
        )


class CloudflareDns(DnsAdapter):
    """A Cloudflare zone, found by name; aliases are CNAMEs, proxied if asked.

    Example::

        CloudflareDns("getreggie.io", proxied=True)

    pulumi-cloudflare is imported on first use only: it takes seconds to load, and
    stages on Route 53 never need it. The Cloudflare provider reads its API token
    from ``cloudflare:apiToken`` or ``CLOUDFLARE_API_TOKEN``.
    """

    provider = "cloudflare"
    _label = "Cloudflare"

    def __init__(self, zone_name: str, proxied: bool = False) -> None:
        super().__init__(zone_name)
        self.proxied = proxied

    @staticmethod
    def _sdk() -> Any:
        import pulumi_cloudflare

        return pulumi_cloudflare

    def _lookup(self, owner: Component) -> pulumi.Output[str]:
        zone = self._sdk().get_zone_output(
            filter={"name": self.zone_name}, opts=pulumi.InvokeOutputOptions(parent=owner)
        )
        return zone.zone_id

    def _record(self, owner: Component, key: str, args: dict[str, Any]) -> pulumi.Resource:
        return owner.child(
            RECORD_ROLE,
            self._sdk().DnsRecord,
            {"zone_id": self.zone_id(owner), "ttl": 1, **args},  # ttl 1: Cloudflare's "auto"
            key=key,
        )

    def alias(
        self,
        owner: Component,
        key: str,
        name: pulumi.Input[str],
        target_domain: pulumi.Input[str],
        target_zone_id: pulumi.Input[str],
    ) -> pulumi.Resource:
        _within_zone(owner, name, self.zone_name)
        return self._record(
            owner,
            f"{key}-cname",
            {"name": name, "type": "CNAME", "content": target_domain, "proxied": self.proxied},
        )

    def validation_record(
        self,
        owner: Component,
        key: str,
        record_name: pulumi.Input[str],
        record_type: pulumi.Input[str],
        record_value: pulumi.Input[str],
    ) -> pulumi.Resource:
        # Cloudflare stores names without the root dot; keeping it would show a diff forever.
        return self._record(
            owner,
            key,
            {
                "name": pulumi.Output.from_input(record_name).apply(lambda n: n.rstrip(".")),
                "type": record_type,
                "content": pulumi.Output.from_input(record_value).apply(lambda v: v.rstrip(".")),
                "proxied": False,  # ACM must see the CNAME itself
            },
        )


def dns_for_stage(stage: StageConfig) -> DnsAdapter | None:
    """The adapter for the stage's zone, or None when the stage has no domain."""
    if stage.domain is None:
        return None
    zone = stage.dns_zone or stage.domain
    if stage.dns == "cloudflare":
        return CloudflareDns(zone, proxied=stage.dns_proxied)
    return Route53Dns(zone)


def _validation_names(domain: str, alternative_names: Sequence[str]) -> list[str]:
    """The names ACM asks to validate, once each: ``x.com`` and ``*.x.com`` share a record."""
    return list(dict.fromkeys(name.removeprefix("*.") for name in (domain, *alternative_names)))


def validated_certificate(
    owner: Component,
    key: str,
    domain: str,
    alternative_names: Sequence[str] = (),
    region: str | None = None,
) -> pulumi.Output[str]:
    """An ACM certificate for ``domain`` validated through the stage's DNS; its ARN once issued.

    ``region`` defaults to the stage's; pass ``"us-east-1"`` for CloudFront.
    """
    app = current_app()
    dns = dns_for_stage(app.stage)
    if dns is None:
        raise owner.fail(
            f"a certificate for {domain!r} needs a DNS zone to validate it; set harbor:domain "
            f"(and harbor:dns) in Pulumi.{app.stage.name}.yaml"
        )
    for name in (domain, *alternative_names):
        _within_zone(owner, name, dns.zone_name)
    provider = app.provider_for(region or app.stage.region)
    certificate = owner.child(
        CERTIFICATE_ROLE,
        aws.acm.Certificate,
        {
            "domain_name": domain,
            "subject_alternative_names": list(alternative_names) or None,
            "validation_method": "DNS",
            "key_algorithm": "RSA_2048",  # still the only kind every client accepts
        },
        key=key,
        # A replacement certificate must be issued before the old one is detached.
        opts=pulumi.ResourceOptions(provider=provider, delete_before_replace=False),
    )
    records: list[pulumi.Resource] = []
    fqdns: list[pulumi.Output[str]] = []
    for index, name in enumerate(_validation_names(domain, alternative_names)):
        option = certificate.domain_validation_options.apply(
            lambda options, name=name: next(
                o for o in options if o.domain_name in (name, f"*.{name}")
            )
        )
        record_name = option.apply(lambda o: o.resource_record_name)
        records.append(
            dns.validation_record(
                owner,
                f"{key}-validation-{index}",
                record_name,
                option.apply(lambda o: o.resource_record_type),
                option.apply(lambda o: o.resource_record_value),
            )
        )
        fqdns.append(record_name.apply(lambda n: n.rstrip(".")))
    validation = owner.child(
        VALIDATION_ROLE,
        aws.acm.CertificateValidation,
        {"certificate_arn": certificate.arn, "validation_record_fqdns": fqdns},
        key=key,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=records),
    )
    return validation.certificate_arn
