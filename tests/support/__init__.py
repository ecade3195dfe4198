"""Helpers shared by the tests (no tests here): servers, processes, API clients, builders.

tests/conftest.py registers this package for pytest's assertion rewriting, so the asserts
in these helpers report their operands like the tests' own.
"""
