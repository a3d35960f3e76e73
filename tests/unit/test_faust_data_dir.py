"""The projection worker keeps Faust's data directory out of the working directory."""

from __future__ import annotations

from pathlib import Path

from streams.worker import ProjectionWorkerConfig, create_app


def test_the_faust_data_directory_is_the_configured_one(tmp_path: Path) -> None:
    config = ProjectionWorkerConfig(bootstrap="127.0.0.1:9", database_url="postgresql:///x",
                                    data_dir=str(tmp_path / "faust"))

    app = create_app(config, [])

    assert Path(app.conf.datadir) == tmp_path / "faust"


def test_without_a_setting_it_lives_under_the_temp_directory_not_the_cwd() -> None:
    config = ProjectionWorkerConfig(bootstrap="127.0.0.1:9", database_url="postgresql:///x")

    app = create_app(config, [])

    assert not Path(app.conf.datadir).resolve().is_relative_to(Path.cwd())


def test_a_data_directory_whose_parent_is_not_made_yet_still_starts(tmp_path: Path) -> None:
    """Faust makes only the last level; the fault matrix's worker, started before
    anything made DIALTONE_DATA_DIR, failed at start (FileNotFoundError)."""
    config = ProjectionWorkerConfig(bootstrap="127.0.0.1:9", database_url="postgresql:///x",
                                    data_dir=str(tmp_path / "data" / "faust"))

    app = create_app(config, [])
    Path(app.conf.datadir).mkdir(exist_ok=True)  # what Faust does on its first start

    assert (tmp_path / "data" / "faust").is_dir()
