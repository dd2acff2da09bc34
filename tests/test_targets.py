"""``crosscheck._targets.load``: what a command-line TARGET names, and every way it can fail."""

from __future__ import annotations

import re

import numpy as np
import pytest

from crosscheck import Case, CheckError
from crosscheck._targets import load
from conftest import ROOT

MODEL = """
import numpy as np
from crosscheck import Case

def loss(p):
    return float(np.sum(p["w"] ** 2))

def grad(p):
    return {"w": 2 * p["w"]}

one = Case("one", loss, grad, {"w": np.array([1.0, 2.0])})
two = Case("two", loss, grad, {"w": np.array([3.0])})
cases = [one, two]
generator = (c for c in cases)

def make():
    return [one, two]

def explode():
    raise RuntimeError("no data file")

not_a_case = 42
mixed = [one, 42]
empty = []
"""


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(MODEL)
    return path


def test_a_case(model):
    [target] = load(f"{model}:one")
    assert isinstance(target.case, Case)
    assert target.label == "my_model/one"
    assert target.case.name == "one"
    assert target.source == str(model)


@pytest.mark.parametrize("attr", ["cases", "make", "generator"])
def test_iterables_and_callables(model, attr):
    targets = load(f"{model}:{attr}")
    assert [t.label for t in targets] == ["my_model/one", "my_model/two"]


def test_relative_path_with_base(model):
    targets = load(f"{model.name}:cases", base=model.parent)
    assert len(targets) == 2


def test_same_file_is_loaded_once(model):
    a = load(f"{model}:one")[0].case
    b = load(f"{model}:two")[0].case
    assert load(f"{model}:cases")[0].case is a
    assert load(f"{model}:cases")[1].case is b


def test_module_target():
    targets = load("reference.seed_net:cases", base=ROOT)
    assert [t.label for t in targets] == ["seed_net/correct", "seed_net/buggy"]
    assert targets[0].source == "reference.seed_net"


def test_reference_file_target():
    [target] = load("reference/seed_net.py:buggy", base=ROOT)
    assert target.label == "seed_net/buggy"
    assert set(target.case.params) == {"W1", "b1", "W2", "b2", "W3", "b3"}


@pytest.mark.parametrize("spec", ["model.py", ":one", "model.py:", "plain"])
def test_malformed_target(spec):
    with pytest.raises(CheckError, match=re.escape(
            f"target `{spec}` is not `path/to/file.py:NAME` or `module:NAME`.")):
        load(spec)


def test_missing_file(tmp_path):
    spec = f"{tmp_path}/absent.py:one"
    with pytest.raises(CheckError, match=re.escape(
            f"target `{spec}`: no file `{tmp_path}/absent.py`.")):
        load(spec)


def test_missing_attribute_lists_what_is_there(model):
    with pytest.raises(CheckError, match=re.escape(
            f"target `{model}:three`: `{model}` has no `three` (it defines: cases, one, two).")):
        load(f"{model}:three")


@pytest.mark.parametrize("attr", ["not_a_case", "mixed", "empty"])
def test_not_cases(model, attr):
    with pytest.raises(CheckError, match=re.escape(
            f"target `{model}:{attr}`: `{attr}` is not a crosscheck.Case, an iterable of Cases, "
            f"or a zero-argument callable returning either.")):
        load(f"{model}:{attr}")


def test_callable_that_raises(model):
    with pytest.raises(CheckError, match=re.escape(
            f"target `{model}:explode`: calling `explode()` raised RuntimeError: no data file")):
        load(f"{model}:explode")


def test_file_that_fails_to_import(tmp_path):
    path = tmp_path / "broken_model.py"
    path.write_text("import numpy as np\nraise ValueError('bad shape in setup')\n")
    with pytest.raises(CheckError, match=re.escape(
            f"target `{path}:case`: importing it raised ValueError: bad shape in setup")):
        load(f"{path}:case")
    # a failed import is not cached: fixing the file fixes the target
    path.write_text("import numpy as np\nfrom crosscheck import Case\n"
                    "case = Case('c', lambda p: 0.0, lambda p: {'w': 0 * p['w']}, "
                    "{'w': np.ones(1)})\n")
    assert load(f"{path}:case")[0].label == "broken_model/c"


def test_missing_module():
    with pytest.raises(CheckError, match=r"target `no_such_module_xyz:cases`: importing it "
                                         r"raised ModuleNotFoundError"):
        load("no_such_module_xyz:cases")


def test_case_args_become_a_tuple():
    c = Case("c", len, len, {"w": np.ones(1)}, [1, 2])
    assert c.args == (1, 2)


# ------------------------------------------------------------- a case by its name in a list

LISTED = """
import numpy as np
from crosscheck import Case

def loss(p):
    return float(np.sum(p["w"] ** 2))

def grad(p):
    return {"w": 2 * p["w"]}

cases = [Case("correct", loss, grad, {"w": np.ones(2)}),
         Case("buggy", loss, lambda p: {"w": 3 * p["w"]}, {"w": np.ones(2)})]
again = (cases[0],)                     # the same Case in a second list: still one case
generator = (c for c in cases)          # never used up by a search
"""


@pytest.fixture
def rnn(tmp_path):
    path = tmp_path / "rnn.py"
    path.write_text(LISTED)
    return path


@pytest.mark.parametrize("name", ["correct", "buggy"])
def test_a_case_by_its_name_inside_a_list(rnn, name):
    [target] = load(f"{rnn}:{name}")
    assert target.label == f"rnn/{name}" and target.case.name == name
    assert target.source == str(rnn)
    assert target.case is next(c for c in load(f"{rnn}:cases") if c.case.name == name).case


def test_a_search_leaves_generators_alone(rnn):
    load(f"{rnn}:buggy")
    assert [t.label for t in load(f"{rnn}:generator")] == ["rnn/correct", "rnn/buggy"]


def test_an_attribute_wins_over_a_name_in_a_list(tmp_path):
    path = tmp_path / "named.py"
    path.write_text(LISTED + "buggy = Case('other', loss, grad, {'w': np.ones(1)})\n")
    [target] = load(f"{path}:buggy")
    assert target.case.name == "other"


def test_two_cases_of_one_name_are_ambiguous(tmp_path):
    path = tmp_path / "twice.py"
    path.write_text(LISTED + "more = [Case('correct', loss, grad, {'w': np.ones(3)})]\n")
    with pytest.raises(CheckError, match=re.escape(
            f"target `{path}:correct`: more than one case in `{path}` is named `correct`: "
            f"`cases[0]` and `more[0]`; give them distinct names, or name the whole list "
            f"(`{path}:cases`).")):
        load(f"{path}:correct")
    assert load(f"{path}:buggy")[0].label == "twice/buggy"


def test_a_missing_name_lists_the_cases_inside_the_lists(rnn):
    with pytest.raises(CheckError, match=re.escape(
            f"target `{rnn}:wrong`: `{rnn}` has no `wrong` (it defines: cases; in its lists, "
            f"cases named buggy, correct).")):
        load(f"{rnn}:wrong")


def test_the_reference_layers_by_name():
    [target] = load("reference/layers.py:batchnorm/buggy", base=ROOT)
    assert target.label == "layers/batchnorm/buggy"
    assert list(target.case.params) == ["x", "gamma", "beta"]
