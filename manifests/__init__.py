"""Package data: the base manifest and the variants (installed as harness.bundled; see harness/resources.py)."""
