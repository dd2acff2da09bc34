"""Truth and safety under hostile input: every bad input to the public API is a
:class:`crosscheck.CheckError` naming the input and the fix (exit 2 on the command line),
never another exception type and never exit 1 ("flagged"); and the caller's data -- params,
args, nested and object-held arrays -- is bitwise unchanged after every call.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

import crosscheck
from crosscheck import CheckError
from crosscheck._cli import main
from crosscheck._suite import load_suite
from conftest import ROOT

FD = {"oracles": ("fd",)}

# np.matrix warns on construction; the tests build them on purpose, to see them refused
pytestmark = pytest.mark.filterwarnings(
    "ignore:the matrix subclass is not the recommended way:PendingDeprecationWarning")


# ----------------------------------------------------------------------------- helpers

def _bits(value, depth=0):
    """A deep, bitwise record of the caller's data: arrays (subclass, dtype, shape, bytes,
    and a masked array's mask), containers, and the arrays objects hold as attributes."""
    if depth > 50:
        return ("deep",)
    if isinstance(value, np.ndarray):
        mask = np.ma.getmaskarray(value).tobytes() if isinstance(value, np.ma.MaskedArray) else b""
        return (type(value).__name__, value.dtype.str, value.shape,
                np.ascontiguousarray(np.asarray(value)).tobytes(), mask)
    if isinstance(value, dict):
        return {k: _bits(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_bits(v, depth + 1) for v in value])
    if hasattr(value, "__dict__") and not callable(value):
        return (type(value).__name__, _bits(vars(value), depth + 1))
    return ("object", repr(value))


def refused(call, match, *data):
    """``call()`` raises exactly a CheckError matching ``match``; ``data`` is untouched."""
    before = _bits(data)
    with pytest.raises(CheckError, match=match) as info:
        call()
    assert type(info.value) is CheckError
    assert _bits(data) == before
    return info.value


def accepted(call, *data):
    """``call()`` returns a report; ``data`` is untouched."""
    before = _bits(data)
    report = call()
    assert isinstance(report, crosscheck.Report)
    assert _bits(data) == before
    return report


def quad_loss(p, x):
    return float(((p["w"] * x) ** 2).sum())


def quad_grad(p, x):
    return {"w": 2 * p["w"] * x * x}


def quad():
    return {"w": np.array([1.0, -2.0, 3.0])}, np.array([0.5, -1.0, 2.0])


class Holder:
    """An object holding arrays as attributes (a model object passed as an argument)."""

    def __init__(self):
        self.weights = np.arange(4.0)
        self.nested = {"a": np.ones((2, 2)), "b": [np.zeros(3)]}


# ------------------------------------------------------------- 1. tolerances that switch checking off

@pytest.mark.parametrize("key", ["autodiff_rtol", "fd_safety", "fd_rtol", "parity_rtol"])
@pytest.mark.parametrize("value, shown", [
    (float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf"),
    (np.float64("nan"), r"np\.float64\(nan\)"), (np.float32("inf"), r"np\.float32\(inf\)"),
    (10 ** 400, r"1000000000000000000000000000000000000\.\.\."),
])
def test_non_finite_tolerances_are_refused(key, value, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                     tolerances={key: value}, **FD),
            rf"^tolerance `{key}` must be a finite number, got {shown}: a nan tolerance flags "
            rf"everything and an infinite one passes everything; pass a number such as ",
            params, x)


@pytest.mark.parametrize("value, shown", [
    (True, "bool True"), (False, "bool False"), (np.bool_(True), r"bool np\.True_"),
    ("1e-6", "str '1e-6'"), (None, "NoneType None"), (1 + 0j, r"complex \(1\+0j\)"),
    ([1e-6], r"list \[1e-06\]"),
])
def test_non_numeric_tolerances_are_refused(value, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                     tolerances={"autodiff_rtol": value}, **FD),
            rf"^tolerance `autodiff_rtol` must be a non-negative number, got {shown}; pass a "
            rf"number such as 1e-10\.$", params, x)


def test_negative_tolerance_is_refused():
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                     tolerances={"fd_safety": -1.0}, **FD),
            r"^tolerance `fd_safety` must be a non-negative number, got -1\.0; pass a number "
            r"such as 4\.0\.$", params, x)


@pytest.mark.parametrize("value, want", [(np.float32(1e-6), float(np.float32(1e-6))),
                                         (np.int64(3), 3.0), (Fraction(1, 4), 0.25),
                                         (0, 0.0), (np.float64(2.5), 2.5)])
def test_numpy_scalars_and_other_reals_are_accepted(value, want):
    params, x = quad()
    report = accepted(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                               tolerances={"fd_safety": value}, **FD),
                      params, x)
    assert report.ok
    assert report.to_dict()["tolerances"]["fd_safety"] == want
    assert type(report.to_dict()["tolerances"]["fd_safety"]) is float


@pytest.mark.parametrize("tolerances, shown", [
    (1e-6, "float 1e-06"), ([("fd_safety", 3.0)], r"list \[\('fd_safety', 3\.0\)\]"),
    ("fd_safety=3", "str 'fd_safety=3'"), (np.ones(2), r"ndarray array\(\[1\., 1\.\]\)"),
])
def test_tolerances_must_be_a_mapping(tolerances, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, tolerances=tolerances,
                                     **FD),
            rf"^`tolerances` must be a dict of overrides such as `\{{'fd_safety': 8\.0\}}`, got "
            rf"{shown}; name the tolerance each value is for\.$", params, x)


@pytest.mark.parametrize("toml, match", [
    ("{fd_safety = inf}", r"tolerance `fd_safety` must be a finite number, got inf"),
    ("{autodiff_rtol = nan}", r"tolerance `autodiff_rtol` must be a finite number, got nan"),
    ("{fd_rtol = -inf}", r"tolerance `fd_rtol` must be a finite number, got -inf"),
    ("{autodiff_rtol = true}", r"tolerance `autodiff_rtol` must be a non-negative number, "
                               r"got bool True"),
    ('{fd_safety = "8"}', r"tolerance `fd_safety` must be a non-negative number, got str '8'"),
])
def test_suite_tolerances_are_refused_by_name(tmp_path, capsys, toml, match):
    config = tmp_path / "pyproject.toml"
    config.write_text(f'[tool.crosscheck]\ncases = ["{ROOT / "reference/linear_1d.py"}:correct"]\n'
                      f"tolerances = {toml}\n")
    with pytest.raises(CheckError, match=r"^`\[tool\.crosscheck\]` in `.*pyproject\.toml`: "
                                         + match):
        load_suite(config)
    assert main(["run", "--config", str(config), "--oracles", "fd"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crosscheck: `[tool.crosscheck]` in ")
    assert re.search(match, err) and "Traceback" not in err


# ------------------------------------------------------------------ 2. ambiguous gradient keys

def _w_dw():
    return {"w": np.array([1.5, 2.0]), "dw": np.array([1.0, -2.0])}


def _w_dw_loss(p):
    return float((p["w"] ** 2).sum() + 3 * (p["dw"] ** 2).sum())


W_DW = (r"^`grad` returned keys that fit more than one parameter block: `dw` could be the "
        r"gradient of block `w` \(the seeds' `d` \+ name\) or of block `dw` \(keyed like "
        r"`params`\)\. crosscheck will not guess which is meant: key the gradient exactly like "
        r"`params`, `\{'w': \.\.\., 'dw': \.\.\.\}`\.$")


@pytest.mark.parametrize("grad", [
    lambda p: {"dw": 2 * p["w"], "ddw": 6 * p["dw"]},            # the seeds' way
    lambda p: {"dw": 2 * p["w"]},                                # only one of the two
    lambda p: {"dw": 2 * p["w"], "d_dw": 6 * p["dw"]},           # mixed styles
    lambda p: (_w_dw_loss(p), {"dw": 2 * p["w"], "ddw": 6 * p["dw"]}),   # (loss, dict)
    lambda p: ({"dw": 2 * p["w"], "ddw": 6 * p["dw"]}, _w_dw_loss(p)),   # (dict, loss)
], ids=["seeds", "one", "mixed", "loss-dict", "dict-loss"])
def test_a_key_two_blocks_could_read_is_refused(grad):
    params = _w_dw()
    refused(lambda: crosscheck.check(_w_dw_loss, grad, params, **FD), W_DW, params)


def test_ambiguity_names_every_clash_and_style():
    params = {"b": np.array([1.0, 2.0]), "_b": np.array([3.0])}

    def loss(p):
        return float((p["b"] ** 2).sum() + (p["_b"] ** 2).sum())

    refused(lambda: crosscheck.check(loss, lambda p: {"d_b": 2 * p["b"], "d__b": 2 * p["_b"]},
                                     params, **FD),
            r"`d_b` could be the gradient of block `b` \(`d_` \+ name\) or of block `_b` \(the "
            r"seeds' `d` \+ name\)\. .*key the gradient exactly like `params`, "
            r"`\{'b': \.\.\., '_b': \.\.\.\}`\.$", params)


def test_keyed_exactly_like_params_is_read_exactly():
    params = _w_dw()
    report = accepted(lambda: crosscheck.check(
        _w_dw_loss, lambda p: {"w": 2 * p["w"], "dw": 6 * p["dw"], "ddw": 0 * p["dw"]},
        params, **FD), params)
    assert report.ok
    wrong = accepted(lambda: crosscheck.check(
        _w_dw_loss, lambda p: {"w": 2 * p["w"], "dw": 2 * p["w"]}, params, **FD), params)
    assert wrong.flagged == ["dw"]   # read for `dw`, never for `w`


def test_unambiguous_seeds_keys_still_work():
    params = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([0.5])}

    def loss(p):
        return float((p["W1"] ** 2).sum() + (p["b1"] ** 3).sum())

    report = accepted(lambda: crosscheck.check(
        loss, lambda p: {"dW1": 2 * p["W1"], "db1": 3 * p["b1"] ** 2, "dZ1": np.ones(7)},
        params, **FD), params)
    assert report.ok


# --------------------------------------------------------- 3. np.matrix and masked arrays

MATRIX = (r"is a `numpy\.matrix`, whose `\*` is a matrix product and whose results stay 2-D, "
          r"so the loss would not compute what it computes on arrays\. Pass a plain ndarray, "
          r"`np\.asarray\({}\)`, and write matrix products with `@`\.$")
MASKED = (r"is a masked array \(`numpy\.ma\.MaskedArray`\); crosscheck will not drop the mask "
          r"and check the values under it as if they were data\. Pass a plain ndarray: fill "
          r"the masked entries \(`{0}\.filled\(0\.0\)`, or the value you mean\) and, if the "
          r"model needs the mask, pass it as an array of its own "
          r"\(`np\.ma\.getmaskarray\({0}\)`\)\.$")


def _subclasses():
    return [
        pytest.param(lambda v: np.matrix(v.reshape(1, -1)), MATRIX, id="matrix"),
        pytest.param(lambda v: np.ma.masked_array(v, mask=[0, 1, 0]), MASKED, id="masked"),
        pytest.param(lambda v: np.ma.masked_array(v), MASKED, id="masked-nomask"),
    ]


@pytest.mark.parametrize("make, message", _subclasses())
def test_subclassed_params_are_refused(make, message):
    _, x = quad()
    params = {"w": make(np.array([1.0, -2.0, 3.0]))}
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, **FD),
            "^block `w` " + message.format("w"), params, x)


@pytest.mark.parametrize("make, message", _subclasses())
@pytest.mark.parametrize("wrap, where", [
    (lambda a: (a,), r"argument 1 after `params`"),
    (lambda a: ({"X": a},), r"argument 1 after `params`\['X'\]"),
    (lambda a: ([np.ones(2), a],), r"argument 1 after `params`\[1\]"),
    (lambda a: (1.0, (a, 2)), r"argument 2 after `params`\[0\]"),
], ids=["top", "in-dict", "in-list", "in-tuple"])
def test_subclassed_args_are_refused_wherever_they_sit(make, message, wrap, where):
    params, _ = quad()
    args = wrap(make(np.array([0.5, -1.0, 2.0])))
    refused(lambda: crosscheck.check(lambda p, *a: float((p["w"] ** 2).sum()),
                                     lambda p, *a: {"w": 2 * p["w"]}, params, *args, **FD),
            "^" + where + " " + message.format("X"), params, args)


def test_masked_gradient_is_refused():
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss,
                                     lambda p, x: {"w": np.ma.masked_array(quad_grad(p, x)["w"])},
                                     params, x, **FD),
            r"^`grad` returned a masked array \(`numpy\.ma\.MaskedArray`\) for block `w`; its "
            r"masked entries would be compared as if they were data: return a plain ndarray of "
            r"shape \(3,\) \(`np\.ma\.filled\(dw, 0\.0\)`, or the values you mean\)\.$",
            params, x)


def _affine_forward(x, w):
    return x @ w, (x, w)


def _affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout


def _layer_inputs():
    rng = np.random.default_rng(5)
    return rng.standard_normal((2, 3)), rng.standard_normal((3, 4))


@pytest.mark.parametrize("make, message", [
    pytest.param(np.matrix, MATRIX, id="matrix"),
    pytest.param(lambda v: np.ma.masked_array(v, mask=v > 0), MASKED, id="masked"),
])
def test_subclassed_layer_inputs_are_refused(make, message):
    x, w = _layer_inputs()
    bad = make(x)
    refused(lambda: crosscheck.check_layer(_affine_forward, _affine_backward, x=bad, w=w, **FD),
            "^input `x` " + message.format("x"), bad, w)
    settings = {"mode": "train", "running": make(np.ones((1, 3)))}

    def forward(x, w, param):
        return x @ w, (x, w)

    refused(lambda: crosscheck.check_layer(forward, _affine_backward, x=x, w=w, param=settings,
                                           **FD),
            r"^input `param`\['running'\] " + message.format(r"param\['running'\]"),
            x, w, settings)
    dout = make(np.ones((2, 4)))
    refused(lambda: crosscheck.check_layer(_affine_forward, _affine_backward, x=x, w=w,
                                           dout=dout, **FD),
            "^`dout` " + message.format("dout"), x, w, dout)


# ------------------------------------------------------------- 4. raw tracebacks for user errors

@pytest.mark.parametrize("value", [[[1.0, 2.0], [3.0]], [1.0, [2.0]], [[1.0], [2.0, 3.0], []]],
                         ids=["rows", "scalar-and-list", "three"])
def test_ragged_params_are_refused(value):
    params, x = {"w": value}, np.ones(3)
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, **FD),
            r"^block `w` is a ragged nested sequence \(its rows have different lengths\), not "
            r"an array; pass a numpy array of one shape, or split it into blocks of one shape "
            r"each\.$", params, x)


def test_params_that_cannot_become_arrays_are_refused():
    deep = 1.0
    for _ in range(70):
        deep = [deep]

    class Hostile:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("no array for you")

    params = {"w": deep}
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, np.ones(1), **FD),
            r"^block `w` cannot be turned into a numpy array \(ValueError: .*\); pass a numpy "
            r"array\.$", params)
    refused(lambda: crosscheck.check(quad_loss, quad_grad, {"w": Hostile()}, np.ones(1), **FD),
            r"^block `w` cannot be turned into a numpy array \(RuntimeError: no array for "
            r"you\); pass a numpy array\.$")
    refused(lambda: crosscheck.check(quad_loss, quad_grad, quad()[0], Hostile(), **FD),
            r"^argument 1 after `params` cannot be turned into a numpy array \(RuntimeError: no "
            r"array for you\); pass a numpy array\.$")


@pytest.mark.parametrize("params, loss", [
    ({"w": np.array([5e-324, 1e-310])}, lambda p: p["w"].sum()),
    ({"w": np.array([-1e-310])}, lambda p: p["w"].sum()),
    ({"w": np.array([1e-160, 1e-160])}, lambda p: p["w"][0] * p["w"][1]),
], ids=["subnormal-sum", "negative", "underflowing-product"])
def test_subnormal_loss_at_the_check_point_is_refused(params, loss):
    refused(lambda: crosscheck.check(loss, lambda p: {"w": np.ones_like(p["w"])}, params, **FD),
            r"^`loss` is -?[0-9.e-]+ at the check point, a subnormal number \(below 2\.2e-308, "
            r"the smallest normal float64\), where rounding is no longer relative to the value "
            r"and no tolerance can be derived from it; check at a point where the loss is a "
            r"normal number \(parameters of order 1, not subnormal ones such as 1e-310\), or "
            r"scale the loss up\.$", params)


def test_subnormal_params_with_a_normal_loss_are_checked():
    params = {"w": np.array([1e-310, -5e-324])}
    report = accepted(lambda: crosscheck.check(lambda p: float(((p["w"] - 1.0) ** 2).sum()),
                                               lambda p: {"w": 2 * (p["w"] - 1.0)}, params, **FD),
                      params)
    assert report.ok


@pytest.mark.parametrize("name, shown", [("w\ud800", r"'w\\ud800'"), ("\udc80b", r"'\\udc80b'")])
def test_unencodable_block_names_are_refused_before_any_user_code(name, shown):
    calls = []

    def loss(p):
        calls.append("loss")
        return float((p[name] ** 2).sum())

    params = {name: np.array([1.0, 2.0])}
    refused(lambda: crosscheck.check(loss, lambda p: {name: 2 * p[name]}, params, **FD),
            rf"^parameter block name {shown} cannot be written as UTF-8 \(it holds \\u?[0-9a-f]+, "
            rf"a lone surrogate\), so no report could name the block: name it with ordinary "
            rf"characters\.$", params)
    assert calls == []


def test_unencodable_case_name_is_refused():
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, case="run\ud800", **FD),
            r"^`case` 'run\\ud800' cannot be written as UTF-8 \(it holds \\ud800, a lone "
            r"surrogate\), so no report could name it: pass a name of ordinary characters\.$",
            params, x)


@pytest.mark.parametrize("seed, shown", [("abc", "str 'abc'"), (-1, "int -1"),
                                         (1.5, r"float 1\.5"), (True, "bool True"),
                                         (None, "NoneType None"), (np.int64(-3), r"int64 np\.int64\(-3\)")])
def test_bad_seeds_are_refused(seed, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, seed=seed, **FD),
            rf"^`seed` must be a non-negative integer, got {shown}; it seeds every random choice "
            rf"of the check, so that a run can be repeated: pass e\.g\. `seed=0`\.$", params, x)


def test_numpy_integer_seed_is_accepted():
    params, x = quad()
    report = accepted(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                               seed=np.int64(3), **FD), params, x)
    assert report.ok and report.seed == 3 and type(report.to_dict()["seed"]) is int


@pytest.mark.parametrize("oracles, shown", [(None, "NoneType None"), (5, "int 5"),
                                            (b"fd", "bytes b'fd'"), ({"fd": 1}, r"dict \{'fd': 1\}")])
def test_oracles_that_are_no_list_of_names_are_refused(oracles, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, oracles=oracles),
            rf"^`oracles` must be a list of oracle names among fd, jax, torch \(or one "
            rf"comma-separated string\), got {shown}; pass e\.g\. `oracles=\('fd', 'jax'\)`\.$",
            params, x)
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, oracles=[None, "fd"]),
            r"^unknown oracle\(s\) \[None\]; choose from fd, jax, torch\.$", params, x)


@pytest.mark.parametrize("batch, shown", [("m", "str 'm'"), (0, "int 0"), (-4, "int -4"),
                                          (2.5, r"float 2\.5"), (True, "bool True")])
def test_bad_batch_is_refused(batch, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, batch=batch, **FD),
            rf"^`batch` must be the batch size m, a positive integer \(or None to guess it from "
            rf"the arguments\), got {shown}; pass e\.g\. `batch=X\.shape\[1\]`\.$", params, x)


def test_numpy_integer_batch_is_accepted():
    params, x = quad()
    assert accepted(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                             batch=np.int64(3), **FD), params, x).ok


@pytest.mark.parametrize("executor, shown", [
    ("dask", r"str 'dask' \(a name is not an executor\)"),
    ("tcp://localhost:8786", r"str 'tcp://localhost:8786' \(a name is not an executor\)"),
    (4, "int 4"), (True, "bool True"),
])
def test_an_executor_must_be_an_executor(executor, shown):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, executor=executor,
                                     fd="all", **FD),
            rf"^`executor` must be a `concurrent\.futures` executor or a Dask client, got "
            rf"{shown}; pass e\.g\. `concurrent\.futures\.ThreadPoolExecutor\(4\)`, or the "
            rf"client of a Dask cluster: `cluster, client = crosscheck\.local_cluster\(4\)` then "
            rf"`executor=client`\.$", params, x)


def test_a_real_executor_is_accepted():
    params, x = quad()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert accepted(lambda: crosscheck.check(quad_loss, quad_grad, params, x,
                                                 executor=pool, fd="all", **FD), params, x).ok


@pytest.mark.parametrize("option, match", [
    ({"taylor": "no"}, r"^`taylor` must be True or False, got str 'no'\.$"),
    ({"taylor": None}, r"^`taylor` must be True or False, got NoneType None\.$"),
    ({"progress": "yes"}, r"^`progress` must be True, False or None \(on a terminal\), got str "
                          r"'yes'\.$"),
    ({"case": 5}, r"^`case` must be a string naming the report \(or None\), got int 5; pass "
                  r"e\.g\. `case='mlp/relu'`\.$"),
    ({"rebind_modules": None}, r"^`rebind_modules` must be a list of module names such as "
                               r"\['sklearn\.linear_model'\], got None\.$"),
    ({"fd": np.int64(0)}, r"^`fd` must be 'auto', 'all' or a positive int"),
])
def test_other_options_are_refused_by_name(option, match):
    params, x = quad()
    refused(lambda: crosscheck.check(quad_loss, quad_grad, params, x, **option, **FD), match,
            params, x)


def test_cyclic_and_too_deep_args_are_refused():
    params, _ = quad()
    cyclic = [np.ones(2)]
    cyclic.append(cyclic)
    deep = {}
    node = deep
    for _ in range(5000):
        node["k"] = {}
        node = node["k"]
    for arg in (cyclic, deep):
        refused(lambda: crosscheck.check(lambda p, a: float((p["w"] ** 2).sum()),
                                         lambda p, a: {"w": 2 * p["w"]}, params, arg, **FD),
                r"^argument 1 after `params` nests lists, tuples or dicts too deeply to copy "
                r"\(or holds itself\); pass the data as arrays, or as containers without "
                r"cycles\.$", params)


def test_object_held_arrays_are_untouched_by_a_check_and_a_refusal():
    params, x = quad()
    holder = Holder()
    data = {"x": x, "holder": holder, "list": [np.arange(3.0)]}
    accepted(lambda: crosscheck.check(lambda p, d: quad_loss(p, d["x"]),
                                      lambda p, d: quad_grad(p, d["x"]), params, data, **FD),
             params, data)
    refused(lambda: crosscheck.check(lambda p, d: quad_loss(p, d["x"]),
                                     lambda p, d: quad_grad(p, d["x"]), params, data,
                                     tolerances={"fd_safety": float("inf")}, **FD),
            r"^tolerance `fd_safety` must be a finite number", params, data)


# ------------------------------------------------------------------------------ check_layer

def test_check_layer_forward_that_raises():
    x, w = _layer_inputs()

    def forward(x, w):
        raise RuntimeError("boom")

    refused(lambda: crosscheck.check_layer(forward, _affine_backward, x=x, w=w, **FD),
            r"^`forward` raised RuntimeError on the given inputs: boom; check_layer needs a "
            r"forward that runs on them \(pass every input by name, arrays as numpy arrays\)\.$",
            x, w)
    refused(lambda: crosscheck.check_layer(_affine_forward, _affine_backward, x=x, w=w[:2], **FD),
            r"^`forward` raised ValueError on the given inputs: matmul", x, w)


@pytest.mark.parametrize("value", [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], ((1.0, 2.0, 3.0),)],
                         ids=["list", "tuple"])
def test_check_layer_input_given_as_a_list(value):
    _, w = _layer_inputs()
    kind = type(value).__name__
    refused(lambda: crosscheck.check_layer(_affine_forward, _affine_backward, x=value, w=w, **FD),
            rf"^input `x` is a {kind} of floats; check_layer checks the gradients of float "
            rf"ndarray inputs and passes other inputs through as they are, so `x` would not be "
            rf"checked: pass `np\.asarray\(x\)`, or name the inputs to check with `wrt=\[\.\.\.\]` "
            rf"to pass `x` through as it is\.$", value, w)
    refused(lambda: crosscheck.check_layer(_affine_forward, _affine_backward, x=value, w=w,
                                           wrt=["x", "w"], **FD),
            r"^input `x` is a", value, w)


def test_check_layer_float_list_setting_passes_through_when_wrt_excludes_it():
    x, _ = _layer_inputs()
    scale = [2.0, -1.0, 0.5]

    def forward(x, scale):
        return x * np.asarray(scale), (x, scale)

    def backward(dout, cache):
        return dout * np.asarray(cache[1])

    report = accepted(lambda: crosscheck.check_layer(forward, backward, x=x, scale=scale,
                                                     wrt=["x"], **FD), x, scale)
    assert report.ok and list(report.blocks) == ["x"]
    once = accepted(lambda: crosscheck.check_layer(forward, backward, x=x, scale=scale,
                                                   wrt=iter(["x"]), **FD), x, scale)
    assert list(once.blocks) == ["x"]   # an iterator of names is read once, as a list


@pytest.mark.parametrize("kwargs, match", [
    ({"dout": [[1.0] * 4] * 2}, r"^`dout` must be a real numpy array of the output's shape "
                                r"\(2, 4\), got list; pass `np\.asarray\(dout, dtype=float\)`\.$"),
    ({"dout": np.full((2, 4), np.nan)}, r"^`dout` holds NaN/Inf; pass a finite upstream "
                                        r"gradient \(or none: check_layer then draws a seeded "
                                        r"random one\)\.$"),
    ({"wrt": "x"}, r"^`wrt` must be a list of input names such as \['x', 'w'\], got 'x'\.$"),
    ({"wrt": [0]}, r"^`wrt` must be a list of input names"),
    ({"seed": "abc"}, r"^`seed` must be a non-negative integer, got str 'abc'"),
    ({"tolerances": {"fd_safety": float("nan")}}, r"^tolerance `fd_safety` must be a finite "),
    ({"executor": "dask"}, r"^`executor` must be a `concurrent\.futures` executor"),
])
def test_check_layer_options_are_refused_before_the_forward_runs(kwargs, match):
    x, w = _layer_inputs()
    calls = []

    def forward(x, w):
        calls.append(1)
        return x @ w, (x, w)

    refused(lambda: crosscheck.check_layer(forward, _affine_backward, x=x, w=w, **kwargs, **FD),
            match, x, w)
    if "dout" not in kwargs:
        assert calls == []


def test_check_layer_forward_without_an_array_output_and_uncallables():
    x, w = _layer_inputs()
    refused(lambda: crosscheck.check_layer(lambda x, w: (None, None), _affine_backward, x=x, w=w,
                                           **FD),
            r"^`forward` returned NoneType as its output; check_layer needs `\(out, cache\)` "
            r"with `out` a real array\.$", x, w)
    refused(lambda: crosscheck.check_layer("affine", _affine_backward, x=x, w=w, **FD),
            r"^`forward` must be callable, got str; pass the layer's functions", x, w)


# ------------------------------------------------------------------ terminal escapes in names

HOSTILE_NAMES = ["w\x1b[2J\x1b[31m", "b\r", "[red]v", "u\u202eevil", "t\nab"]


def _hostile_report():
    params = {n: np.array([1.0 + i, -2.0]) for i, n in enumerate(HOSTILE_NAMES)}

    def loss(p):
        return float(sum((p[n] ** 2).sum() for n in HOSTILE_NAMES))

    def grad(p):
        out = {n: 2 * p[n] for n in HOSTILE_NAMES}
        out[HOSTILE_NAMES[0]] = 3 * p[HOSTILE_NAMES[0]]   # flagged: named in the details too
        return out

    return accepted(lambda: crosscheck.check(loss, grad, params, case="c\x1b]0;title\x07",
                                             **FD), params)


def test_terminal_escapes_in_names_are_shown_escaped():
    report = _hostile_report()
    text = str(report)
    assert not any(ch in text for ch in "\x1b\r\x07\u202e")
    assert report.flagged == [HOSTILE_NAMES[0]]
    assert text.splitlines()[0] == ("c\\x1b]0;title\\x07: FLAGGED 1 of 5 block(s): "
                                    "w\\x1b[2J\\x1b[31m — by centered differences alone")
    rows = [line.split()[0] for line in text.splitlines()[4:9]]
    assert rows == ["w\\x1b[2J\\x1b[31m", "b\\r", "[red]v", "u\\u202eevil", "t\\nab"]
    assert "of `w\\x1b[2J\\x1b[31m`" in text   # the diagnosis quotes the name escaped


def test_rich_table_shows_names_as_named():
    from rich.console import Console

    from crosscheck._render_text import render_rich

    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(render_rich(_hostile_report()))
    out = buffer.getvalue()
    assert "[red]v" in out and "w\\x1b[2J\\x1b[31m" in out and "\x1b" not in out


def test_cli_shows_escaped_names(tmp_path, capsys):
    model = tmp_path / "hostile.py"
    model.write_text(
        "import numpy as np\n"
        "from crosscheck import Case\n"
        "N = 'w\\x1b[31m'\n"
        "case = Case('esc\\x1b[2J', lambda p: float((p[N] ** 2).sum()),\n"
        "            lambda p: {N: 3 * p[N]}, {N: np.array([1.0, 2.0])})\n")
    assert main(["check", f"{model}:case", "--oracles", "fd"]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "FLAGGED 1 of 1 block(s): w\\x1b[31m" in out
    assert out.rstrip().endswith("1 flagged (hostile/esc\\x1b[2J)")


# ------------------------------------------------------------------------------ the command line

def _cli(*args, cwd=ROOT):
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONWARNINGS"}
    env["NO_COLOR"] = "1"
    return subprocess.run([sys.executable, "-m", "crosscheck", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=240)


def test_json_dash_writes_the_json_to_standard_output(tmp_path):
    run = _cli("check", str(ROOT / "reference/linear_1d.py") + ":correct", "--oracles", "fd",
               "--json", "-", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["case"] == "linear_1d/correct" and data["ok"] is True
    assert "all 1 block(s) agree" in run.stderr and "crosscheck: 1 case(s): 1 agree" in run.stderr
    assert not (tmp_path / "-").exists()


def test_run_json_dash_writes_the_run_to_standard_output(tmp_path):
    run = _cli("run", str(ROOT / "reference/linear_1d.py") + ":buggy", "--oracles", "fd",
               "--json", "-", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    data = json.loads(run.stdout)
    assert data["schema"] == "crosscheck.run/1"
    assert [r["flagged"] for r in data["reports"]] == [["theta"]]
    assert "FLAGGED 1 of 1 block(s): theta" in run.stderr
    assert not (tmp_path / "-").exists()


def test_two_outputs_to_standard_output_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "x.py:c", "--json", "-", "--markdown", "-"])
    assert info.value.code == 2
    assert ("error: only one output can go to standard output, got `-` for --json and "
            "--markdown.") in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--dask", "not a url"], "argument --dask: 'not a url' is not a scheduler address; pass one "
                              "such as `tcp://host:8786` (or `host:8786`), or `local` for a "
                              "cluster on this machine."),
    (["--dask", "tcp://"], "argument --dask: 'tcp://' is not a scheduler address"),
    (["--dask", "tcp://a b:1"], "argument --dask: 'tcp://a b:1' is not a scheduler address"),
    (["--seed", "abc"], "argument --seed: 'abc' is not a non-negative integer; pass e.g. "
                        "`--seed 0`."),
    (["--seed", "-1"], "argument --seed: '-1' is not a non-negative integer"),
    (["--seed", "1.5"], "argument --seed: '1.5' is not a non-negative integer"),
])
def test_bad_command_line_options_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(["check", str(ROOT / "reference/linear_1d.py") + ":correct", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_dask_address_distributed_cannot_parse_exits_2(capsys):
    pytest.importorskip("distributed")
    code = main(["check", str(ROOT / "reference/linear_1d.py") + ":correct", "--oracles", "fd",
                 "--dask", "localhost"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("crosscheck: --dask 'localhost' is not a scheduler address (")
    assert err.rstrip().endswith("pass one such as `tcp://host:8786`, or `local`.")


def _report(case="a", ok=True, flagged=(), seconds=1.0, **extra):
    doc = {"schema": "crosscheck.report/1", "case": case, "ok": ok, "flagged": list(flagged),
           "oracles": {"fd": {"version": "v", "seconds": seconds}},
           "blocks": {"w": {"verdict": "ok", "diagnosis": None}}}
    doc.update(extra)
    return doc


def _without(key):
    doc = _report(ok=False, flagged=["w"])
    del doc[key]
    return doc


@pytest.mark.parametrize("bad, problem", [
    (_without("flagged"), "has no `flagged` list of block names"),
    (_without("ok"), "has no `ok`"),
    (_report(ok="false"), "has `ok` = 'false', not true or false"),
    ({**_report(ok=False), "flagged": "w"}, "has `flagged` = 'w', not a list of block names"),
    ({**_report(ok=False), "flagged": [1]}, "has `flagged` = [1], not a list of block names"),
    (_report(ok=True, flagged=["w"]), "says `ok: true` but flags `w`"),
    (_report(ok=False), "says `ok: false` but flags no block"),
    (_report(seconds="fast"), "has `oracles.fd.seconds` = 'fast', not a non-negative number of "
                              "seconds"),
    (_report(seconds=-1.0), "has `oracles.fd.seconds` = -1.0, not a non-negative number of "
                            "seconds"),
    (_report(seconds=float("nan")), "has `oracles.fd.seconds` = nan, not a non-negative number "
                                    "of seconds"),
    (_report(seconds=True), "has `oracles.fd.seconds` = True, not a non-negative number of "
                            "seconds"),
    (_report(oracles=[1]), "has `oracles` = [1], not an object"),
    (_report(oracles={"fd": 3}), "has `oracles.fd` = 3, not an object"),
    (_report(oracles={"fd": {"seconds": 1.0, "error": 5}}), "has `oracles.fd.error` = 5, not a "
                                                            "string"),
    (_report(blocks=[]), "has `blocks` = [], not an object"),
    (_report(blocks={"w": "ok"}), "has `blocks.w` = 'ok', not an object"),
    (_report(ok=False, flagged=["w"], blocks={"w": {"diagnosis": ["scale"]}}),
     "has `blocks.w.diagnosis` = ['scale'], not an object or null"),
    (_report(ok=False, flagged=["w"], blocks={"w": {"diagnosis": {"factor": 2.0}}}),
     "has `blocks.w.diagnosis.kind` = None, not a string"),
    (_report(ok=False, flagged=["w"], blocks={"w": {"diagnosis": {"kind": "scale",
                                                                  "factor": "2"}}}),
     "has `blocks.w.diagnosis.factor` = '2', not a number or null"),
    ({"case": "a", "error": 3}, "has `error` = 3, not a string"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
@pytest.mark.parametrize("side", ["old", "new"])
def test_compare_refuses_malformed_reports_with_exit_2(tmp_path, capsys, bad, problem, side):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_report(ok=False, flagged=["w"],
                                       blocks={"w": {"diagnosis": {"kind": "scale",
                                                                   "factor": 2.0}}})))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"schema": "crosscheck.run/1", "metadata": {},
                                  "reports": [_report("first"), bad]}))
    pair = [good, broken] if side == "new" else [broken, good]
    assert main(["compare", *map(str, pair)]) == 2
    err = capsys.readouterr().err
    assert err == (f"crosscheck: `{broken}`: report 2 (case 'a') {problem}; pass a file written "
                   f"by `crosscheck run --json` or `crosscheck check --json`.\n")


def test_compare_refuses_deep_json_with_exit_2(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_report()))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["compare", str(good), str(deep)]) == 2
    assert capsys.readouterr().err == (
        f"crosscheck: `{deep}` nests arrays or objects too deeply to read; it is no crosscheck "
        f"run: pass a file written by `crosscheck run --json` or `crosscheck check --json`.\n")


@pytest.mark.parametrize("option, value", [("--slower-ratio", "nan"), ("--slower-ratio", "inf"),
                                           ("--slower-seconds", "nan"), ("--slower-ratio", "x")])
def test_compare_thresholds_must_be_finite(tmp_path, capsys, option, value):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_report()))
    with pytest.raises(SystemExit) as info:
        main(["compare", str(good), str(good), option, value])
    assert info.value.code == 2
    assert f"argument {option}: '{value}' is not a finite number; pass e.g. 2.0." in \
        capsys.readouterr().err


def test_compare_still_exits_1_for_a_real_new_failure(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report()))
    new.write_text(json.dumps(_report(ok=False, flagged=["w"])))
    assert main(["compare", str(old), str(new)]) == 1
    assert "NEW FAILURE  a: flagged w (before: agrees)" in capsys.readouterr().out


def test_compare_keeps_a_case_literally_named_like_a_repeat():
    from crosscheck._run_comparison import compare_runs

    runs = [_report("a"), _report("a"), _report("a #2", ok=False, flagged=["w"])]
    cmp = compare_runs(runs, runs)
    assert cmp.still_failing == ["a #2 #2"] and not cmp.failed
