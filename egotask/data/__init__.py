"""Benchmark data: where annotations and videos live, and how frames are read from them."""

from egotask.data.sources import BENCHMARKS, DataError, get_benchmark, load_docs, resolve_video

__all__ = ["BENCHMARKS", "DataError", "get_benchmark", "load_docs", "resolve_video"]
