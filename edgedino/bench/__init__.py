"""Benchmarks: latency, size, memory, parity and dense quality of every artifact, side by side."""
