"""Benchmarks: ``iotmon bench ingest`` measures the broker's ceiling and ingest against it."""

from iotmon_tools.bench.ingest import BenchOptions, BenchResult, run_ingest_benchmark

__all__ = ["BenchOptions", "BenchResult", "run_ingest_benchmark"]
