"""End-to-end tests run `dialtone` processes whose embedded PostgreSQL runs as an
unprivileged user inside the test's directory. pytest's own temp root is reset to
mode 0700 by every new pytest session on the machine, which would lock that server
out mid-test, so here `tmp_path` lives outside it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tmp_path(pg_scratch_dir: Path) -> Path:
    return pg_scratch_dir
