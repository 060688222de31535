"""Kept at its old path: stacks deployed before the move pickled these dynamic providers as
``components.asset_sync.*``, and Pulumi imports them from here to update or delete those stacks."""

from components.aws.asset_sync import (  # noqa: F401
    AssetSync,
    AssetSyncProvider,
    Invalidation,
    InvalidationProvider,
    SyncSource,
)
