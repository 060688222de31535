"""Entry point of the CrossGuard pack: ``pulumi preview --policy-pack policy``.

Constructing ``PolicyPack`` starts the analyzer server and never returns, which is why the
policies live in ``policies.py`` and only this file builds the pack.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the pack runs as a folder; the rules live in the project

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.policies import build_policies  # noqa: E402

PolicyPack(
    name="harbor-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
