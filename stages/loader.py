"""Reading a stage's settings from Pulumi config and turning mistakes into one clear message."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import ValidationError

from stages.model import STAGE_DEFAULTS, StageConfig, defaults_for

# Keys the loader fills itself; a stage file may not set them.
_DERIVED_KEYS = {"name", "app"}


class StageConfigError(pulumi.RunError):
    """A stage file holds a key or value the stage model does not allow.

    It derives from ``pulumi.RunError`` so that ``pulumi up`` shows the message
    without a Python traceback.
    """


def stage_file(stage: str) -> str:
    """The file the Pulumi CLI reads a stage's config from."""
    return f"Pulumi.{stage}.yaml"


def _allowed_keys() -> dict[str, str]:
    """camelCase config key -> field name, for every settable field."""
    return {
        (field.alias or name): name
        for name, field in StageConfig.model_fields.items()
        if name not in _DERIVED_KEYS
    }


def parse_config_value(raw: Any) -> Any:
    """Pulumi hands config values over as strings; objects and lists arrive JSON encoded."""
    if isinstance(raw, str) and raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _describe(error: dict[str, Any], app: str) -> str:
    """One readable line for one pydantic error: the key, what is wrong, what is allowed."""
    location = [str(part) for part in error["loc"]]
    key = f"{app}:{'.'.join(location)}" if location else "stage"
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    elif error["type"] == "extra_forbidden":
        message = "is not a setting"
    if "input" in error and error["type"] not in ("extra_forbidden", "value_error", "missing"):
        message += f" (got {error['input']!r})"
    return f"{key} {message}" if location else message


def load_stage(stage: str, app: str, config: Mapping[str, Any]) -> StageConfig:
    """Validate the stage's settings.

    ``config`` is the stack's whole config (``{"harbor:nat": "ec2", "aws:region": ...}``);
    only keys in the app's namespace are read. Missing keys take the stage's defaults.

    Example::

        load_stage("prod", "harbor", {"harbor:nat": "managed"}).nat  # "managed"
    """
    file = stage_file(stage)
    allowed = _allowed_keys()
    given: dict[str, Any] = {}
    problems: list[str] = []
    prefix = f"{app}:"
    for full_key, raw in sorted(config.items()):
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean {app}:{close[0]}?" if close else ""
            problems.append(
                f"{full_key} is not a stage setting{hint} (allowed: {', '.join(sorted(allowed))})"
            )
            continue
        given[key] = parse_config_value(raw)
    chosen = given.get("defaults")
    if chosen is not None and (not isinstance(chosen, str) or chosen not in STAGE_DEFAULTS):
        problems.append(
            f"{prefix}defaults must be one of {', '.join(STAGE_DEFAULTS)} (got {chosen!r}): "
            "the stage whose defaults this stage takes"
        )
    if not problems:
        try:
            base = defaults_for(stage, chosen if isinstance(chosen, str) else None)
            return StageConfig(**_merge(base, given), name=stage, app=app)
        except ValidationError as exc:
            problems = [_describe(error, app) for error in exc.errors(include_url=False)]
    raise StageConfigError("\n".join(f"{file}: {problem}" for problem in problems))


def load_current_stage() -> StageConfig:
    """Validate the settings of the stack Pulumi is running now."""
    from pulumi.runtime import config as runtime_config

    config: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return load_stage(pulumi.get_stack(), pulumi.get_project(), config)
