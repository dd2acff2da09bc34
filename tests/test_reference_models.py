"""Every reference model, checked end to end with all three oracles (reports cached per session).

* each correct case passes; each planted bug is flagged on exactly EXPECTED's blocks, with
  EXPECTED's diagnosis kind and factor;
* the Taylor remainder order is 2 on correct blocks of smooth models and 1 on wrong blocks;
* on smooth models centered differences land within 1e-10 of the exact gradient;
* the caller's arrays are bitwise unchanged by the check.
"""

from __future__ import annotations

import pytest

from conftest import SMOOTH_MODULES, load_reference, reference_case, reference_params

pytest.importorskip("jax")
pytest.importorskip("torch")

KINDS = {"scale", "sign", "transpose", "regularization", "partial", "zero", "nonfinite", "other"}


@pytest.mark.parametrize("module, case", reference_params())
def test_flagged_blocks_are_exactly_expected(reports, module, case):
    expected = load_reference(module).EXPECTED[case]
    report = reports.get(module, case)
    assert report.flagged == expected["flagged"]
    assert report.ok is (not expected["flagged"])
    for name, block in report.blocks.items():
        if name in expected["flagged"]:
            assert block.verdict == "wrong"
        else:
            assert block.verdict == "ok", (name, block.reason)
            assert block.diagnosis is None


@pytest.mark.parametrize("module, case", reference_params("buggy"))
def test_diagnosis_kind_and_factor_are_expected(reports, module, case):
    expected = load_reference(module).EXPECTED[case]["kinds"]
    report = reports.get(module, case)
    assert set(expected) == set(report.flagged)
    for name, (kind, factor) in expected.items():
        diagnosis = report.blocks[name].diagnosis
        assert diagnosis is not None
        assert diagnosis.kind == kind, (name, diagnosis.text)
        if factor is None:
            assert diagnosis.factor is None
        else:
            assert diagnosis.factor == pytest.approx(factor, rel=1e-6)
        d = report.to_dict()["blocks"][name]["diagnosis"]
        assert d["kind"] == kind and d["kind"] in KINDS
        assert d["size"] == report.blocks[name].size
        assert 1 <= d["mismatched"] <= d["size"]


@pytest.mark.parametrize("module, case", reference_params())
def test_every_oracle_ran_and_differences_are_reported(reports, module, case):
    report = reports.get(module, case)
    data = report.to_dict()
    assert data["schema"] == "crosscheck.report/1"
    assert data["case"] == f"{module}/{case}"
    assert set(data["oracles"]) == {"fd", "jax", "torch"}
    for name, info in data["oracles"].items():
        assert "error" not in info, (name, info)
        assert info["version"] and info["seconds"] >= 0
    assert data["oracles"]["jax"]["parity"] is True
    assert data["oracles"]["torch"]["parity"] is True
    for name, block in data["blocks"].items():
        for oracle in ("fd", "jax", "torch"):
            # centered differences have no difference to report where every element is a kink
            fd_blind = oracle == "fd" and block["kinks"] == block["size"]
            assert (block["difference"][oracle] is None) == fd_blind, (name, oracle)
    assert report.forward["jax"] == pytest.approx(report.forward["numpy"], rel=1e-12)
    assert report.forward["torch"] == pytest.approx(report.forward["numpy"], rel=1e-12)


@pytest.mark.parametrize("module, case", reference_params())
def test_callers_arrays_are_bitwise_unchanged(reports, module, case):
    reports.get(module, case)
    key = (module, case, ())
    assert reports.unchanged[key]


@pytest.mark.parametrize("module, case", reference_params("buggy"))
def test_bug_blocks_disagree_with_every_oracle_by_the_same_amount(reports, module, case):
    report = reports.get(module, case)
    for name in report.flagged:
        d = report.blocks[name].difference
        assert d["jax"] == pytest.approx(d["torch"], rel=1e-9)
        assert d["fd"] == pytest.approx(d["jax"], rel=1e-6)
        assert d["jax"] > 1e-3


def test_seed_net_buggy_matches_the_notebook(reports):
    report = reports.get("seed_net", "buggy")
    assert report.flagged == ["b1", "W2"]
    assert report.blocks["b1"].diagnosis.factor == pytest.approx(4.0, rel=1e-6)
    assert report.blocks["W2"].diagnosis.factor == pytest.approx(2.0, rel=1e-6)
    # the seeds' formula on a block that is c times too large: |c-1|/(|c|+1)
    assert report.blocks["b1"].difference["jax"] == pytest.approx(3 / 5, rel=1e-9)
    assert report.blocks["W2"].difference["jax"] == pytest.approx(1 / 3, rel=1e-9)


def test_seed_net_correct_differences(reports):
    report = reports.get("seed_net", "correct")
    assert report.ok
    for name, block in report.blocks.items():
        assert block.difference["fd"] <= 1e-9, (name, block.difference)
        assert block.difference["jax"] <= 1e-12, (name, block.difference)
        assert block.difference["torch"] <= 1e-12, (name, block.difference)


# --- ReLU exactly at its kink ----------------------------------------------------------

def test_relu_kinks_correct_passes_with_kinks_reported(reports):
    report = reports.get("relu_kinks", "correct")
    assert report.flagged == []
    assert report.ok
    assert report.blocks["W1"].kinks > 0
    assert report.blocks["b1"].kinks > 0
    assert report.blocks["W2"].kinks == 0
    assert report.blocks["b2"].kinks == 0
    for name in ("W1", "b1"):
        assert report.blocks[name].verdict == "ok"
        assert "kink" in report.blocks[name].reason
    data = report.to_dict()
    assert data["blocks"]["W1"]["kinks"] == report.blocks["W1"].kinks


def test_relu_kinks_buggy_flags_only_b2(reports):
    report = reports.get("relu_kinks", "buggy")
    assert report.flagged == ["b2"]
    assert report.blocks["b2"].diagnosis.kind == "scale"
    assert report.blocks["b2"].diagnosis.factor == pytest.approx(2.0, rel=1e-6)
    assert report.blocks["W1"].verdict == "ok"
    assert report.blocks["b1"].verdict == "ok"


# --- Taylor remainder test ----------------------------------------------------------------

def _smooth_correct_blocks():
    out = []
    for module in SMOOTH_MODULES:
        c = reference_case(module, "correct")
        for name in c.params:
            out.append(pytest.param(module, name, id=f"{module}:{name}"))
    return out


def _wrong_blocks():
    out = []
    for p in reference_params("buggy"):
        module, case = p.values
        for name in load_reference(module).EXPECTED[case]["flagged"]:
            out.append(pytest.param(module, case, name, id=f"{module}:{case}:{name}"))
    return out


@pytest.mark.parametrize("module, block", _smooth_correct_blocks())
def test_taylor_order_two_on_correct_blocks_of_smooth_models(reports, module, block):
    order = reports.get(module, "correct").blocks[block].taylor["order"]
    if module == "linear_1d":
        # a loss linear in its parameter has no remainder to measure
        assert order is None or order == pytest.approx(2.0, abs=0.3)
        return
    assert order is not None, f"{module}:{block}: no Taylor order measured"
    assert order == pytest.approx(2.0, abs=0.3)


@pytest.mark.parametrize("module, case, block", _wrong_blocks())
def test_taylor_order_one_on_wrong_blocks(reports, module, case, block):
    order = reports.get(module, case).blocks[block].taylor["order"]
    assert order is not None
    assert order == pytest.approx(1.0, abs=0.3)


# --- accuracy of centered differences ---------------------------------------------------

def _smooth_correct_all_blocks():
    return [pytest.param(m, b, id=f"{m}:{b}") for m in SMOOTH_MODULES
            for b in reference_case(m, "correct").params]


@pytest.mark.parametrize("module, block", _smooth_correct_all_blocks())
def test_fd_within_1e10_of_exact_on_smooth_models(reports, module, block):
    """Target: centered differences agree with the exact gradient to 1e-10 (seeds' formula)."""
    b = reports.get(module, "correct").blocks[block]
    assert b.difference["jax"] <= 1e-13  # the hand-written gradient is exact here
    assert b.difference["fd"] <= 1e-10, \
        f"{module}:{block}: difference.fd = {b.difference['fd']:.3g}"


def test_reference_module_expectations_are_consistent():
    for module in ("seed_net", "deep_net", "linear_1d", "softmax_regression", "l2_net",
                   "layer_norm", "rnn", "relu_kinks"):
        mod = load_reference(module)
        assert {c.name for c in mod.cases} == set(mod.EXPECTED)
        for case in mod.cases:
            expected = mod.EXPECTED[case.name]
            assert set(expected["kinds"]) == set(expected["flagged"])
            assert all(name in case.params for name in expected["flagged"])
