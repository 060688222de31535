"""Reading a stage's settings from Pulumi config and turning mistakes into one clear message."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pydantic import ValidationError

from stages.model import STAGE_DEFAULTS, STAGE_NAME, StageConfig, defaults_for

# What Pulumi accepts as a stack name (pulumi/pulumi, pkg/backend: validateStackName).
PULUMI_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

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


def check_stage_name(stage: str) -> str:
    """``stage`` if it can name a Pulumi stack and prefix every resource name; else one clear error."""
    if not PULUMI_STACK_NAME.match(stage):
        raise StageConfigError(
            f"stage {stage!r} cannot name a Pulumi stack (1-100 letters, digits, '-', '_' or "
            "'.'); pass one such as --stage dev, --stage prod or --stage alice"
        )
    if not STAGE_NAME.match(stage):
        raise StageConfigError(
            f"stage name {stage!r} must be 1-24 lowercase letters, digits or hyphens, starting "
            "with a letter (it becomes part of every resource name); e.g. dev, prod or alice"
        )
    return stage


def read_stage_document(path: Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stage file, or one error naming the file and the line."""
    text = path.read_text()
    try:
        root = yaml.compose(text)
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path.name} line {mark.line + 1}" if mark is not None else path.name
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise StageConfigError(f"{where}: not valid YAML ({problem}); fix the file") from None
    if document is None:
        return {}
    if not isinstance(document, dict) or root is None or not isinstance(root, yaml.MappingNode):
        raise StageConfigError(
            f"{path.name} line 1: a stage file is a mapping with a `config:` key, not "
            f"{type(document).__name__}"
        )
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        line = next(
            (value.start_mark.line + 1 for key, value in root.value if key.value == "config"), 1
        )
        raise StageConfigError(
            f"{path.name} line {line}: `config:` must be a mapping of settings "
            f"(like `harbor:nat: ec2`), not {type(config).__name__}"
        )
    return config


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


def _region_agreement(app: str, config: Mapping[str, Any], given: dict[str, Any]) -> list[str]:
    """The program's region and the AWS provider's default region must be one region.

    ``aws:region`` configures Pulumi's default AWS provider (and what ``pulumi`` and
    ``aws`` commands assume); ``{app}:region`` places every resource. Only
    ``aws:region`` set: the program follows it. Both set and different: refused, since
    state, lookups and resources would straddle two regions.
    """
    provider_region = config.get("aws:region")
    if provider_region is None:
        return []
    if "region" not in given:
        given["region"] = provider_region
        return []
    if given["region"] != provider_region:
        return [
            f"aws:region {provider_region!r} and {app}:region {given['region']!r} disagree; set "
            "both to the region the stage deploys to"
        ]
    return []


def load_stage(stage: str, app: str, config: Mapping[str, Any]) -> StageConfig:
    """Validate the stage's settings.

    ``config`` is the stack's whole config (``{"harbor:nat": "ec2", "aws:region": ...}``);
    only keys in the app's namespace are read. Missing keys take the stage's defaults.

    Example::

        load_stage("prod", "harbor", {"harbor:nat": "managed"}).nat  # "managed"
    """
    check_stage_name(stage)
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
    problems.extend(_region_agreement(app, config, given))
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
    stage = load_stage(pulumi.get_stack(), pulumi.get_project(), config)
    # The engine runs the program from its folder, where the stage files live.
    if not Path(stage_file(stage.name)).exists():
        pulumi.log.warn(personal_stage_note(stage.name))
    return stage


def personal_stage_note(stage: str) -> str:
    """What a stage without a stage file is planned as, so a typo (``--stage prd``) shows."""
    if stage in STAGE_DEFAULTS:
        return f"stage {stage!r} has no {stage_file(stage)}; it gets {stage}'s defaults"
    return (
        f"stage {stage!r} has no {stage_file(stage)}: a personal stage with dev's defaults "
        f"(known stages: {', '.join(STAGE_DEFAULTS)})"
    )
