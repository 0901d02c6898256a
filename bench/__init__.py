"""Benchmarks run on this machine (``tongdai bench ...``): see ``bench.reports_bench``."""
