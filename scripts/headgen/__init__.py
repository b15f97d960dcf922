"""Builder of the built-in default head (used by scripts/build_default_head.py only)."""
