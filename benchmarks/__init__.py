"""Benchmarks: cost per turn, latency, framework overhead, throughput and the embedded model."""
