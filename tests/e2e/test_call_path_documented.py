"""docs/architecture.md's list of the files one call's code runs through, from its
INVITE to its CDR row, is the list ``devtools.path_trace`` measures (*One call
flow*): a module that joins or leaves the path changes the page in the same commit.

The measurement runs ``dialtone up`` and a ``dialtone b2bua`` worker under a profile
hook and places one sipp call (about 20 s)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import path_trace

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
LISTED = re.compile(r"(\d+) `([\w/]+\.py)`")
COUNT = re.compile(r"\*\*File count: (\d+) project files\.\*\*")


def documented() -> tuple[dict[int, str], int]:
    """The numbered files of "The life of one call", and the count the page gives."""
    text = DOC.read_text()
    section = text.split("## The life of one call", 1)[1].split("In the Kafka deployment", 1)[0]
    count = COUNT.search(text)
    assert count is not None, "docs/architecture.md gives no file count"
    return {int(n): path for n, path in LISTED.findall(section)}, int(count.group(1))


@pytest.fixture
def work() -> Iterator[Path]:
    # Outside pytest's temp root: the embedded PostgreSQL of `dialtone up` lives here
    # (see tests/conftest.py, pg_scratch_dir).
    root = Path(tempfile.mkdtemp(prefix="dialtone-test-path-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_page_numbers_its_files_one_to_the_count() -> None:
    listed, count = documented()
    assert sorted(listed) == list(range(1, count + 1))
    assert len(set(listed.values())) == count


@pytest.mark.sip
def test_the_documented_files_are_the_ones_a_call_runs_through(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)  # `dialtone up` on its embedded default
    hits, until = path_trace.trace_one_call(work)
    measured = {path for name in ("b2bua", "up")
                for path in path_trace.on_path(hits[name], path_trace.CALL_THREADS[name], until)}
    listed, _ = documented()
    documented_files = set(listed.values())
    assert (sorted(measured - documented_files), sorted(documented_files - measured)) == ([], [])
