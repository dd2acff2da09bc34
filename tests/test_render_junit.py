"""JUnit XML (crosscheck._render_junit): one testcase per case, failures and errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from crosscheck._render_junit import failure_message, render_junit
from crosscheck._run_file import Outcome
from crosscheck._targets import Target


def _outcomes(reports):
    correct = reports.get("seed_net", "correct", oracles=("fd",))
    buggy = reports.get("seed_net", "buggy", oracles=("fd",))
    return [Outcome(Target("seed_net/correct", None, "reference/seed_net.py"), correct, None, 1.25),
            Outcome(Target("seed_net/buggy", None, "reference/seed_net.py"), buggy, None, 0.5),
            Outcome("missing.py:cases", None, "target `missing.py:cases`: no file.", 0.001)]


def test_one_testcase_per_case_with_failure_and_error(reports):
    root = ET.fromstring(render_junit(_outcomes(reports), timestamp="2024-01-01T00:00:00",
                                      hostname="ci"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite.attrib["tests"] == "3" and suite.attrib["failures"] == "1"
    assert suite.attrib["errors"] == "1" and suite.attrib["time"] == "1.751"
    assert suite.attrib["timestamp"] == "2024-01-01T00:00:00" and suite.attrib["hostname"] == "ci"
    cases = suite.findall("testcase")
    assert [(c.attrib["classname"], c.attrib["name"], c.attrib["time"]) for c in cases] == [
        ("reference/seed_net.py", "seed_net/correct", "1.250"),
        ("reference/seed_net.py", "seed_net/buggy", "0.500"),
        ("missing.py", "missing.py:cases", "0.001")]
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    assert "all 6 block(s) agree" in cases[0].find("system-out").text
    failure = cases[1].find("failure")
    message = failure.attrib["message"]
    assert message.startswith("flagged b1, W2 — b1: hand = 4.000 × reference (fd)")
    assert "W2: hand = 2.000 × reference (fd)" in message
    assert "FLAGGED 2 of 6 block(s)" in failure.text
    error = cases[2].find("error")
    assert error.attrib["message"] == "target `missing.py:cases`: no file."
    assert cases[2].find("failure") is None


def test_failure_message_names_blocks_and_diagnoses(reports):
    report = reports.get("seed_net", "buggy", oracles=("fd",))
    text = failure_message(report)
    assert text.startswith("flagged b1, W2 — ")
    assert report.blocks["b1"].diagnosis.text.rstrip(".") in text


def test_reports_alone_and_unsafe_text(reports):
    report = reports.get("seed_net", "correct", oracles=("fd",))
    outcome = Outcome("bad<&>\x01\"name", None, "error with \x00 control <chars> & \"quotes\"")
    xml = render_junit([report, outcome], name="nightly")
    root = ET.fromstring(xml)   # parses: escaped, control characters replaced
    assert root.attrib["name"] == "nightly"
    cases = root.find("testsuite").findall("testcase")
    assert cases[0].attrib["name"] == "seed_net/correct"
    assert cases[1].attrib["name"] == "bad<&>\ufffd\"name"
    assert cases[1].find("error").attrib["message"] == (
        "error with \ufffd control <chars> & \"quotes\"")
