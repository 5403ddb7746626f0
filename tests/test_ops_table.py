"""Runs every case of the op tables (tests/cases_*.py) in every variant and mode.

Also checks that the tables cover every registered op type.
"""

from __future__ import annotations

import importlib
import pathlib

import pytest
from optable import MODES, Case, op_types_of, run_case, variants_of

from graphflow.ops.registry import registered_ops

_HERE = pathlib.Path(__file__).parent
CASE_MODULES = sorted(p.stem for p in _HERE.glob("cases_*.py"))


def _all_cases() -> list[Case]:
    cases: list[Case] = []
    for name in CASE_MODULES:
        cases.extend(importlib.import_module(name).CASES)
    return cases


ALL_CASES = _all_cases()

# Op types whose results are checked by dedicated tests rather than a NumPy table.
COVERED_ELSEWHERE = {
    "RandomStandardNormal": "random: statistics and seeding in test_random.py",
    "RandomUniform": "random: statistics and seeding in test_random.py",
    "RandomUniformInt": "random: statistics and seeding in test_random.py",
    "TruncatedNormal": "random: statistics and seeding in test_random.py",
    "Fused": "made by the compiler only: checked by the fusion tests (tests/compiler)",
}


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in ALL_CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_tables_cover_every_registered_op() -> None:
    covered: set[str] = set()
    for case in ALL_CASES:
        covered |= op_types_of(case)
    missing = set(registered_ops()) - covered - set(COVERED_ELSEWHERE)
    assert not missing, f"registered ops without a table case: {sorted(missing)}"


_PARAMS = [
    pytest.param(case, variant, mode, id=f"{case.id}-{variant}-{mode}")
    for case in ALL_CASES
    for variant in variants_of(case)
    for mode in MODES
]


@pytest.mark.parametrize(("case", "variant", "mode"), _PARAMS)
def test_op_case(case: Case, variant: str, mode: str) -> None:
    run_case(case, variant, mode)
