"""Stages: the validated settings that make dev, staging, prod and personal stages differ."""

from stages.loader import StageConfigError, load_current_stage, load_stage, stage_file
from stages.model import STAGE_DEFAULTS, DatabaseSizing, StageConfig, defaults_for

__all__ = [
    "STAGE_DEFAULTS",
    "DatabaseSizing",
    "StageConfig",
    "StageConfigError",
    "defaults_for",
    "load_current_stage",
    "load_stage",
    "stage_file",
]
