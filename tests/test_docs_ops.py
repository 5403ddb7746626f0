"""docs/ops.md lists every registered op with its kind and status, and nothing else.

When this test fails, regenerate the table (keeping the hand-written API
column) with `python tests/test_docs_ops.py --write`.
"""

from __future__ import annotations

import pathlib
import re
import sys

import graphflow  # noqa: F401 - registers every op
from graphflow.compiler.lowering.module import compiled_op_types
from graphflow.ops.registry import OpDef, registered_ops

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "ops.md"
HEADER = "| op type | kind | API | reference | compiled | gradient | what it computes |"
RULE = "|---|---|---|---|---|---|---|"
_ROW = re.compile(r"^\| `([A-Za-z0-9]+)` \|")


def status_cells(op_def: OpDef) -> list[str]:
    """The cells the registry decides: kind, reference, compiled, gradient."""
    reference = "yes" if (op_def.reference or op_def.stateful_reference) else "no"
    if op_def.gradient is not None:
        gradient = "yes"
    elif not op_def.differentiable:
        gradient = "not differentiable"
    else:
        gradient = "no"
    compiled = "yes" if op_def.name in compiled_op_types() else "no"
    return [op_def.kind, reference, compiled, gradient]


def parse_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            rows[match.group(1)] = cells
    return rows


def render(existing: dict[str, list[str]]) -> str:
    lines = [HEADER, RULE]
    for name, op_def in sorted(registered_ops().items()):
        api = existing.get(name, ["", "", ""])[2] or "—"
        kind, reference, compiled, gradient = status_cells(op_def)
        lines.append(
            f"| `{name}` | {kind} | {api} | {reference} | {compiled} | {gradient} | {op_def.doc} |"
        )
    return "\n".join(lines)


def test_ops_md_matches_the_registry() -> None:
    rows = parse_rows(DOC.read_text())
    ops = registered_ops()
    assert set(rows) == set(ops), (
        f"in the registry only: {sorted(set(ops) - set(rows))}; "
        f"in docs/ops.md only: {sorted(set(rows) - set(ops))}"
    )
    for name, op_def in ops.items():
        cells = rows[name]
        assert [cells[1], *cells[3:6]] == status_cells(op_def), f"row of {name} is stale"
        assert cells[2] not in ("", "—"), f"row of {name} names no API function"


if __name__ == "__main__" and "--write" in sys.argv:
    text = DOC.read_text()
    start, end = text.index(HEADER), text.index("\n\n", text.index(HEADER))
    DOC.write_text(text[:start] + render(parse_rows(text)) + text[end:])
