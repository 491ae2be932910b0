"""The load-generator benchmark (not a test suite): `python -m bench.bench_load`, or bench/run.sh."""
