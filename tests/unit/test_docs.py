from __future__ import annotations

from pathlib import Path

from domain.permissions import matrix_markdown


def test_access_control_doc_shows_the_matrix_in_force():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "access-control.md").read_text()
    assert matrix_markdown() in doc
