"""Drop-in adapter for the peer harness (``../shared/bench``); see docs/benchmarks.md."""
