"""The test runner's summary: every layer in its own unit, and a closing line that counts test cases only."""

import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("run_tests", os.path.join(HERE, "..", "..", "..", "scripts", "run_tests.py"))
run_tests = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(run_tests)


def layer(name, passed, failed, unit="test cases", seconds=10.0, note=""):
    result = run_tests.Result(name, passed, failed, note, unit=unit)
    result.seconds = seconds
    return result


def test_the_closing_line_counts_test_cases_and_never_adds_checks_of_other_kinds():
    text = run_tests.summary([layer("unit", 400, 0), layer("sanity", 24, 0, "sanity tests"),
                              layer("lint", 266, 0, "files linted"), layer("integration", 170, 0, seconds=2000),
                              layer("molecule", 33, 0, "verify checks")])
    closing = text.splitlines()[-1]
    assert closing == "570 passed, 0 failed (test cases of unit, integration); sanity, lint, molecule: ok"
    assert "total 2040s" in text


def test_each_layer_line_names_its_unit_and_duration():
    lines = run_tests.summary([layer("lint", 266, 0, "files linted", seconds=46.4)]).splitlines()
    [line] = [entry for entry in lines if entry.startswith("lint")]
    assert "266 passed" in line and "files linted" in line and line.rstrip().endswith("46s")


def test_a_failing_layer_of_another_kind_is_named_in_the_closing_line():
    closing = run_tests.summary([layer("unit", 10, 0), layer("lint", 265, 1, "files linted")]).splitlines()[-1]
    assert closing == "10 passed, 0 failed (test cases of unit); lint: FAILED lint"


def test_a_layer_that_ran_nothing_is_no_tests_not_ok():
    text = run_tests.summary([layer("reliability", 0, 0)])
    assert "NO TESTS" in text
    assert not run_tests.Result("reliability", 0, 0).ok
