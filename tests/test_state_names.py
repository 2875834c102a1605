"""File names under ``state_dir``: no zone or view name can escape the folder.

Regressions: ``zone_with_a_slash_made_subfolders`` (``a/b.example.`` wrote into
``<view>/a/``), ``view_named_dotdot_wrote_outside_state_dir`` (``../../x``),
``absolute_zone_name_wrote_into_that_folder`` (``/some/dir/x.example.``).
"""

from __future__ import annotations

import os

import dns.name
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authd.config import config_from_dict, state_file
from authd.errors import ConfigError

STATE = "/srv/authd/state"


@pytest.mark.parametrize(
    ("zone", "file"),
    [
        ("example.com.", "example.com.journal"),
        ("Example.COM.", "example.com.journal"),  # names compare without case
        (".", "@.journal"),
        ("root.", "root.journal"),  # not the root zone's file
        ("@.example.", "%40.example.journal"),
        ("a/b.example.", "a%2Fb.example.journal"),
        ("/some/dir/x.example.", "%2Fsome%2Fdir%2Fx.example.journal"),
        ("a\\.b.example.", "a%2Eb.example.journal"),  # a dot inside a label
        ("..x.", None),  # not a name: empty labels
        ("_dmarc.example.", "_dmarc.example.journal"),
        ("xn--bcher-kva.example.", "xn--bcher-kva.example.journal"),
        ("a%41.example.", "a%2541.example.journal"),  # '%' itself is escaped
    ],
)
def test_zone_state_file_names(zone: str, file: str | None) -> None:
    if file is None:
        with pytest.raises(dns.name.EmptyLabel):
            dns.name.from_text(zone)
        return
    path = state_file(STATE, "default", dns.name.from_text(zone), ".journal")
    assert path == os.path.join(STATE, "default", file)


labels = st.binary(min_size=1, max_size=20)


@given(st.lists(labels, min_size=0, max_size=4), st.lists(labels, min_size=0, max_size=4))
def test_every_zone_stays_in_its_view_folder_and_has_its_own_file(
    a: list[bytes], b: list[bytes]
) -> None:
    za, zb = dns.name.Name([*a, b""]), dns.name.Name([*b, b""])
    pa = state_file(STATE, "v", za, ".journal")
    pb = state_file(STATE, "v", zb, ".journal")
    for p in (pa, pb):
        assert os.path.dirname(p) == os.path.join(STATE, "v")
        assert os.path.basename(p) not in (".", "..") and "/" not in os.path.basename(p)
    assert (pa == pb) == (za == zb)


@pytest.mark.parametrize(
    "name", ["../../x", "..", ".", "a/b", "", "-x", "v" * 65, "in side", "x\x00"]
)
def test_view_names_that_cannot_be_folders_are_refused(name: str) -> None:
    data = {"views": [{"name": name, "zones": []}]}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, None, "/tmp")
    assert err.value.path == "views[0].name"
    assert "is not a view name" in str(err.value)


def test_ordinary_view_names_are_accepted() -> None:
    for name in ("internal", "external", "view-1", "lab.root", "A_b"):
        config = config_from_dict({"views": [{"name": name, "zones": []}]}, None, "/tmp")
        assert [v.name for v in config.views] == [name]


def test_secondary_copy_of_an_odd_zone_name_stays_in_state_dir(tmp_path) -> None:
    data = {
        "options": {"state_dir": "state"},
        "zones": [
            {"name": "a/b.example", "type": "secondary", "primaries": [{"address": "192.0.2.1"}]}
        ],
    }
    config = config_from_dict(data, None, str(tmp_path))
    [zone] = config.views[0].zones
    assert zone.file == str(tmp_path / "state" / "default" / "a%2Fb.example.zone")
