"""Package data: the cluster build scripts and versions.env (installed as harness.scripts; see harness/resources.py)."""
