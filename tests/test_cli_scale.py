"""The command line's scale options: ``--fd`` and ``--dask``."""

from __future__ import annotations

import json

import pytest

from test_cli import cli


def test_fd_all_is_applied_and_recorded(tmp_path):
    out = tmp_path / "r.json"
    run = cli("reference/seed_net.py:buggy", "--oracles", "fd", "--fd", "all",
              json_path=out)
    assert run.code == 1
    report = json.loads(out.read_text())
    assert report["flagged"] == ["b1", "W2"]
    # fd="all": one centered difference per element, no ladder everywhere (2n + 1 evaluations
    # of the first pass, plus the refinement of the disagreeing elements only)
    assert report["blocks"]["W1"]["coverage"]["fd"]["refined"] == 0
    # b1 × 4: its 4 elements with a non-zero gradient disagree (unit 4 is dead on the batch)
    assert report["blocks"]["b1"]["coverage"]["fd"]["refined"] == 4


@pytest.mark.parametrize("bad", ["some", "0", "-2"])
def test_a_bad_fd_mode_is_refused_before_any_check(bad):
    run = cli("reference/seed_net.py:correct", "--fd", bad)
    assert run.code == 2
    assert "argument --fd" in run.stderr and "`fd` must be" in run.stderr


def test_dask_local_gives_the_in_process_report(tmp_path):
    pytest.importorskip("distributed")
    here, there = tmp_path / "here.json", tmp_path / "there.json"
    args = ("reference/deep_net.py:buggy", "--oracles", "fd", "--fd", "all")
    assert cli(*args, json_path=here).code == 1
    run = cli(*args, "--dask", "local", json_path=there)
    assert run.code == 1, run.stderr
    a, b = json.loads(here.read_text()), json.loads(there.read_text())
    assert a["flagged"] == b["flagged"] == ["W1", "W2"]
    for name, block in a["blocks"].items():
        assert b["blocks"][name]["difference"]["fd"] == block["difference"]["fd"], name


def test_dask_at_an_unreachable_address_is_a_clear_error():
    pytest.importorskip("distributed")
    run = cli("reference/seed_net.py:correct", "--oracles", "fd",
              "--dask", "tcp://127.0.0.1:9")
    assert run.code == 2
    assert "--dask tcp://127.0.0.1:9: cannot reach the scheduler" in run.stderr
