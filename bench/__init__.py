"""Benchmarks that start real Tandem nodes; run them as modules (``python -m bench.fanout``)."""
