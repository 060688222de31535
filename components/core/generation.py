"""GenerationId: a short random id made once per generation of a resource and kept in state.

Some AWS names must differ between two generations of the same resource although the
program's inputs are the same: a database's final snapshot is named at create time, and
AWS refuses a second snapshot of the same name when the stage is destroyed and created
again. The id is drawn when Pulumi creates this resource and then read from state, so
every ``pulumi up`` of one generation sees the same value (no diff), and a new stack (or
a change of ``keepers``) draws a new one.

Example::

    generation = GenerationId("Database-generation", keepers={"cluster": identifier})
    snapshot = pulumi.Output.concat(identifier, "-final-", generation.hex)
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

KIND = "harbor:generation-id"
HEX_LENGTH = 8


class GenerationIdProvider(ResourceProvider):
    """Draws the id on create; a change of ``keepers`` replaces it (a new generation)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        value = secrets.token_hex(HEX_LENGTH // 2)
        return CreateResult(id_=value, outs={**props, "hex": value})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("keepers") != news.get("keepers")
        return DiffResult(changes=changed, replaces=["keepers"] if changed else [], delete_before_replace=False)


class GenerationId(pulumi.dynamic.Resource):
    """A random ``hex`` (8 characters) stable for as long as this resource and its keepers live."""

    hex: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        keepers: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(GenerationIdProvider(), name, {"kind": KIND, "keepers": dict(keepers), "hex": None}, opts)
