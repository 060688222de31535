"""The shared core every component uses: the app and its stage, the base class, naming,
tags, linking, removal and protection, replacement, and shared policy statements."""
