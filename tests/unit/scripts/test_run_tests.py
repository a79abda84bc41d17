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
                              layer("molecule", 33, 0, "verify checks")], 2050.4)
    closing = text.splitlines()[-1]
    assert closing == "570 passed, 0 failed (test cases of unit, integration); sanity, lint, molecule: ok"
    assert "total 2050s wall clock" in text.splitlines()[-2]


def test_each_layer_line_names_its_unit_and_duration():
    lines = run_tests.summary([layer("lint", 266, 0, "files linted", seconds=46.4)], 46.4).splitlines()
    [line] = [entry for entry in lines if entry.startswith("lint")]
    assert "266 passed" in line and "files linted" in line and line.rstrip().endswith("46s")


def test_a_failing_layer_of_another_kind_is_named_in_the_closing_line():
    closing = run_tests.summary([layer("unit", 10, 0), layer("lint", 265, 1, "files linted")], 20).splitlines()[-1]
    assert closing == "10 passed, 0 failed (test cases of unit); lint: FAILED lint"


def test_a_layer_that_ran_nothing_is_no_tests_not_ok():
    text = run_tests.summary([layer("reliability", 0, 0)], 1)
    assert "NO TESTS" in text
    assert not run_tests.Result("reliability", 0, 0).ok


def test_layers_run_beside_another_are_named_with_the_wall_clock_and_their_own_times():
    text = run_tests.summary([layer("sanity", 24, 0, "sanity tests", seconds=100), layer("lint", 264, 0, "files linted",
                              seconds=40), layer("integration", 170, 0, seconds=900), layer("reliability", 50, 0, seconds=500),
                              layer("molecule", 33, 0, "verify checks", seconds=200)], 1410,
                             {"integration": ["sanity", "lint"], "reliability": ["molecule"]})
    assert text.splitlines()[-2] == ("total 1410s wall clock (sanity and lint beside integration; molecule beside "
                                     "reliability; the layers' own times add up to 1740s)")


def test_a_layer_run_beside_another_keeps_its_output_for_later_and_streams_nothing(capsys):
    def echo():
        dummy, output = run_tests.run(["echo", "from the quiet layer"])
        return run_tests.Result("lint", 1 if "quiet layer" in output else 0, 0, unit="files linted")

    def broken():
        raise OSError("no such tool")

    results = {}
    companion = run_tests.Companion(["lint", "sanity"], {"lint": echo, "sanity": broken}, results)
    companion.start()
    companion.join()
    printed = capsys.readouterr().out
    assert results["lint"].ok and "from the quiet layer" in results["lint"].output
    assert results["sanity"].failed == 1 and "no such tool" in results["sanity"].note  # a crash is the layer's failure
    # nothing streamed while it ran: the output comes once, after the layer, under its own heading
    assert printed.splitlines().count("from the quiet layer") == 1
    assert printed.index("===== layer lint (ran beside another layer)") < printed.index("+ echo from the quiet layer")
    companion.join()  # a second join prints nothing more
    assert capsys.readouterr().out == ""
