"""Fixture generators for tests and benchmarks: the shipped demo, simulated entries, the
multi-entry fixture and synthetic stores. Not used by the library; may import anything
below the command line.
"""
