"""Shared pytest setup: every test starts with a fresh default graph."""

import pytest

import graphflow as gf


@pytest.fixture(autouse=True)
def _fresh_default_graph():
    gf.reset_default_graph()
    yield
