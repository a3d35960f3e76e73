"""CSV cells (api/csv_export.py): a text a spreadsheet would run as a formula is
written as text; numbers, signed numbers and every other text as they are."""

from __future__ import annotations

import pytest

from api.csv_export import cell


@pytest.mark.parametrize("text", ["=1+1", "@SUM(A1)", "\t=1", "\r=1", "+1+1", "-A1",
                                  "+cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\",\"y\")"])
def test_a_formula_gets_an_apostrophe_first(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize("text", ["+3225550100", "-12.5", "3225550100", "alice",
                                  "history-1@test", "", "a=b", "'quoted"])
def test_numbers_and_plain_text_are_kept(text: str) -> None:
    assert cell(text) == text


def test_values_that_are_not_text_are_kept() -> None:
    assert (cell(-3), cell(4.5), cell(None), cell(["a", "=b"])) == (-3, 4.5, "", '["a","=b"]')
