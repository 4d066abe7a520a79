"""Latency modeling: block keys, LiteRT profiler, tables and cost models."""
