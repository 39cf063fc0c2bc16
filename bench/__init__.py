"""The project's own benchmarks (`make bench`); not part of the test suite."""
