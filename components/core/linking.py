"""Linking: what a linked resource tells the code that uses it, and what it lets that code do.

A component that can be linked implements :class:`Linkable`: ``link_properties``
(the values the handler reads, such as a table name) and ``link_permissions``
(least-privilege IAM: the actions the resource needs, on its own ARNs only).

The encoder writes the link data in the form SST's runtime SDKs read, so a handler
keeps using ``from sst import Resource`` (PyPI ``sst-sdk``) or
``import { Resource } from "sst"`` (npm ``sst``) unchanged:

* ``SST_RESOURCE_App`` in the environment: ``{"name": app, "stage": stage}``;
* every linked resource, JSON encoded and encrypted with AES-256-GCM (12-byte zero
  nonce, tag appended) into a file named by ``SST_KEY_FILE``, its key in ``SST_KEY``
  (base64). Only the small key travels in the environment, so links never press
  against Lambda's 4 KB environment limit and values stay out of the console.

Example::

    data = {"Table": {"name": "harbor-dev-Table", "type": "sst.aws.Dynamo"}}
    bundle = encode_links(data, app="harbor", stage="dev", key_file="/var/task/resource.enc")
    bundle.environment["SST_KEY"], bundle.file_bytes
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pulumi
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE_NAME = "resource.enc"
SST_NONCE = bytes(12)  # the SDKs decrypt with a zero nonce; see derive_key for why that is safe


@dataclass(frozen=True)
class Permission:
    """One IAM grant: ``actions`` on ``resources`` (ARNs, possibly still unknown Outputs)."""

    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]]

    def statement(self) -> pulumi.Output[dict[str, Any]]:
        """The IAM policy statement for this grant."""
        return pulumi.Output.all(*self.resources).apply(
            lambda arns: {
                "Effect": "Allow",
                "Action": sorted(set(self.actions)),
                "Resource": sorted(set(arns)),
            }
        )


@runtime_checkable
class Linkable(Protocol):
    """Anything that can be passed in a ``link=[...]`` list."""

    @property
    def link_name(self) -> str:
        """The name the handler reads it under: ``Resource.<link_name>``."""
        ...

    @property
    def link_type(self) -> str:
        """The SST type name recorded in the link data (``sst.aws.Dynamo``)."""
        ...

    def link_properties(self) -> Mapping[str, pulumi.Input[Any]]:
        """The values the handler reads, e.g. ``{"name": table_name}``."""
        ...

    def link_permissions(self) -> Sequence[Permission]:
        """The least-privilege grants the handler needs to use the resource."""
        ...


class LinkError(pulumi.RunError):
    """A link list that cannot be encoded (two links under one name, a non-linkable value)."""


def check_links(links: Sequence[Any]) -> list[Linkable]:
    """The links, checked: each one linkable, each name used once."""
    seen: dict[str, Any] = {}
    for link in links:
        if not isinstance(link, Linkable):
            raise LinkError(
                f"{link!r} cannot be linked: link components such as Dynamo, Bucket, Queue "
                "or Secret (anything with link_name, link_properties and link_permissions)"
            )
        if link.link_name in seen and seen[link.link_name] is not link:
            raise LinkError(
                f"two linked resources are both named {link.link_name!r}; handlers read links "
                "by name, so give the components different names"
            )
        seen[link.link_name] = link
    return list(seen.values())


def link_data(links: Sequence[Any]) -> pulumi.Output[dict[str, dict[str, Any]]]:
    """``{link_name: {**properties, "type": link_type}}`` for every link, resolved."""
    checked = check_links(links)
    entries = [
        pulumi.Output.from_input(dict(link.link_properties())).apply(
            lambda props, kind=link.link_type: {**props, "type": kind}
        )
        for link in checked
    ]
    names = [link.link_name for link in checked]
    return pulumi.Output.all(*entries).apply(lambda values: dict(zip(names, values, strict=True)))


def link_statements(links: Sequence[Any]) -> pulumi.Output[list[dict[str, Any]]]:
    """Every IAM statement the links need, in link order."""
    statements = [p.statement() for link in check_links(links) for p in link.link_permissions()]
    return pulumi.Output.all(*statements).apply(list)


def derive_key(plaintext: bytes) -> bytes:
    """The 256-bit key for one link file, derived from its own contents.

    The SDKs fix the nonce at zero, so a key must never encrypt two different
    plaintexts; a content-derived key guarantees that, and keeps deploys repeatable
    (the same links give the same file, so an unchanged function shows no diff).
    """
    return hashlib.sha256(b"harbor-link-key\x00" + plaintext).digest()


def encrypt_link_file(data: Mapping[str, Any], key: bytes) -> bytes:
    """AES-256-GCM ciphertext with its 16-byte tag appended, as the SDKs expect."""
    plaintext = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return AESGCM(key).encrypt(SST_NONCE, plaintext, None)


@dataclass(frozen=True)
class LinkBundle:
    """What a function needs to read its links: environment variables and one file."""

    environment: dict[str, str]
    file_bytes: bytes
    file_name: str = KEY_FILE_NAME
    resources: dict[str, Any] = field(default_factory=dict)


def encode_links(
    resources: Mapping[str, Any], *, app: str, stage: str, key_file: str
) -> LinkBundle:
    """Encode resolved link data (``link_data``'s value) for SST's runtime SDKs.

    ``key_file`` is where the function will find the file at run time, such as
    ``/var/task/resource.enc`` for a file packaged at the archive's root.
    """
    if "App" in resources:
        raise LinkError("'App' is reserved for the application itself; rename that link")
    plaintext = json.dumps(dict(resources), sort_keys=True, separators=(",", ":")).encode()
    key = derive_key(plaintext)
    return LinkBundle(
        environment={
            "SST_RESOURCE_App": json.dumps({"name": app, "stage": stage}),
            "SST_KEY": base64.b64encode(key).decode(),
            "SST_KEY_FILE": key_file,
        },
        file_bytes=encrypt_link_file(resources, key),
        resources=dict(resources),
    )
