"""Which lab a command means without --lab: here, $AUTHD_LAB, the last one up."""

from __future__ import annotations

from pathlib import Path

import pytest

from authd.cli import lab as labcli


def _lab(folder: Path) -> Path:
    folder.mkdir()
    (folder / "lab.yaml").write_text("servers: []\n")
    return folder


def test_the_lab_named_the_one_here_then_env_then_the_last_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("AUTHD_LAB", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert labcli.lab_folder(None) == "."  # nothing known: here, as before
    assert labcli.lab_folder("given") == "given"
    last = _lab(tmp_path / "last")
    labcli._remember_lab(last)
    assert labcli.last_lab_file().read_text().strip() == str(last)
    assert labcli.lab_folder(None) == str(last)
    monkeypatch.setenv("AUTHD_LAB", "/from/env")
    assert labcli.lab_folder(None) == "/from/env"
    here = _lab(tmp_path / "here")
    monkeypatch.chdir(here)
    assert labcli.lab_folder(None) == "."
    # A last lab that was removed is not used.
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("AUTHD_LAB")
    (last / "lab.yaml").unlink()
    assert labcli.lab_folder(None) == "."
