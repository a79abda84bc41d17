"""Run the test layers, count what each ran, and fail when any layer fails or runs nothing.

    python scripts/run_tests.py [unit|sanity|lint|integration|reliability|molecule|all] ...

Expects the environment of scripts/bootstrap.sh (source .work/env.sh) and, for integration and
molecule, the reference Engine images (tests/engine/build.py). Prints one line per layer and ends
with "N passed, N failed".
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("ENGINE_OPS_WORK", os.path.join(REPO, ".work"))
REPORTS = os.path.join(WORK, "reports")
LAYERS = ("unit", "sanity", "lint", "integration", "reliability", "molecule")


class Result:
    """What one layer ran, in its own unit: test cases (pytest), sanity tests, files linted or verify checks."""

    def __init__(self, layer, passed=0, failed=0, note="", unit="test cases"):
        self.layer, self.passed, self.failed, self.note, self.unit = layer, passed, failed, note, unit
        self.seconds = 0.0
        self.output = ""

    @property
    def ok(self):
        return self.failed == 0 and self.passed > 0


# Layers that run beside another one, which leaves part of the machine idle while it waits on Engines (their output
# is printed when they end). Sanity and lint need neither Docker nor an Engine. Molecule's fleet has names and ports
# of its own; it runs beside the reliability cases that run two at a time, and ends before the `serial` ones restart
# the Docker daemon.
BESIDE = {"integration": ("sanity", "lint"), "reliability": ("molecule",)}
QUIET = threading.local()  # .output (a list) in the thread that runs layers beside another: kept, not streamed


def run(cmd, cwd=REPO, env=None, log_name=None):
    """Run a command, streaming its output (unless run beside another layer) and keeping a copy in the reports
    directory."""
    kept = getattr(QUIET, "output", None)
    stream = kept is None
    lines = []
    if stream:
        print("+ " + " ".join(cmd), flush=True)
    else:
        lines.append("+ " + " ".join(cmd) + "\n")
    os.makedirs(REPORTS, exist_ok=True)
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            if stream:
                sys.stdout.write(line)
            lines.append(line)
    output = "".join(lines)
    if log_name:
        with open(os.path.join(REPORTS, log_name), "w", encoding="utf-8") as handle:
            handle.write(output)
    if not stream:
        kept.append(output)
    return proc.returncode, output


# Brain tests that run a second time in the venv on a Python that loads SQLite extensions (sqlite-vec), and the
# reference Engine's own unit tests, which need the extension as the Engine does in its image.
EXT_UNIT_PATHS = ["tests/unit/reference_engine", "tests/unit/plugins/module_utils/test_sqlite_vec_brain.py",
                  "tests/unit/plugins/module_utils/test_snapshot_store_and_sqlite.py"]


def unit():
    main = pytest_layer("unit", ["tests/unit"], ["--ignore", "tests/unit/reference_engine"])
    ext_python = os.environ.get("ENGINE_OPS_EXT_PYTHON")
    if not ext_python or not os.path.exists(ext_python):
        return Result("unit", main.passed, main.failed + 1, "ENGINE_OPS_EXT_PYTHON is missing: run scripts/bootstrap.sh")
    ext = pytest_layer("unit-ext", EXT_UNIT_PATHS, python=ext_python)
    return Result("unit", main.passed + ext.passed, main.failed + ext.failed,
                  "%d in the main venv (no SQLite extensions), %d on %s (loads sqlite-vec)%s"
                  % (main.passed, ext.passed, ext_python, "; " + main.note if main.note else ""))


def pytest_layer(layer, paths, extra=(), python=sys.executable):
    junit = os.path.join(REPORTS, layer + ".xml")
    if os.path.exists(junit):
        os.unlink(junit)
    # tmp_path and friends under the work dir, not /tmp/pytest-of-<user> (emptied when the layer runs again; pytest
    # makes the layer's folder but not its parents)
    os.makedirs(os.path.join(WORK, "tmp"), exist_ok=True)
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--junitxml", junit,
           "--basetemp", os.path.join(WORK, "tmp", layer)]
    rc, dummy = run(cmd + list(extra) + list(paths), log_name=layer + ".log")
    if rc == 5 or not os.path.exists(junit):
        return Result(layer, 0, 1, "pytest collected no tests (exit %d): the setup is broken" % rc)
    suite = ET.parse(junit).getroot()
    suites = [suite] if suite.tag == "testsuite" else list(suite)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    if rc != 0 and failed == 0:
        failed = 1
    return Result(layer, total - failed - skipped, failed, "%d skipped" % skipped if skipped else "")


def reliability(before_serial=lambda: None):
    """Two workers for the cases that only kill controllers and break inputs, a test file to a worker (the cases of a
    file may share one fleet); then, alone, the `serial` ones, which restart the Docker daemon or mount filesystems
    under every other test's Engines (`before_serial` waits for whatever ran beside the first part)."""
    side_by_side = pytest_layer("reliability", ["tests/reliability"], ["-n", "2", "--dist", "loadfile", "-m", "not serial"])
    before_serial()
    alone = pytest_layer("reliability-serial", ["tests/reliability"], ["-m", "serial"])
    notes = [note for note in (side_by_side.note, alone.note) if note]
    return Result("reliability", side_by_side.passed + alone.passed, side_by_side.failed + alone.failed,
                  "%d side by side, %d alone%s" % (side_by_side.passed, alone.passed,
                                                   "; " + "; ".join(notes) if notes else ""))


def tracked_files():
    """Files git would ship: tracked (and present) plus untracked that are not ignored."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                         capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and os.path.isfile(os.path.join(REPO, f))]


def sanity():
    """ansible-test needs a real ansible_collections/engine_ops/lifecycle path: test a fresh copy."""
    root = os.path.join(WORK, "tmp", "sanity")
    dest = os.path.join(root, "ansible_collections", "engine_ops", "lifecycle")
    shutil.rmtree(root, ignore_errors=True)
    for name in tracked_files():
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(os.path.join(REPO, name), os.path.join(dest, name))
    # its own (empty) git repository: inside the checkout's work dir, ansible-test would ask the checkout's git, which
    # ignores .work, and skip every file
    subprocess.run(["git", "init", "-q", dest], check=True)
    rc, output = run(["ansible-test", "sanity", "--python", "3.11", "--color", "no"], cwd=dest,
                     log_name="sanity.log")
    ran = re.findall(r"^Running sanity test [\"']([^\"']+)[\"']", output, re.M)
    failing = re.findall(r"^FATAL: The (\d+) sanity test\(s\) listed below", output, re.M)
    failed_count = int(failing[0]) if failing else 0
    if rc != 0 and not failed_count:
        failed_count = 1
    return Result("sanity", len(ran) - failed_count, failed_count, unit="sanity tests")


def lint():
    # ansible-lint installs this collection into ~/.ansible/collections (the tests' home) once and then prefers that
    # copy; a stale copy from an older checkout would hide new roles, so it is removed first.
    shutil.rmtree(os.path.expanduser("~/.ansible/collections/ansible_collections/engine_ops/lifecycle"),
                  ignore_errors=True)
    env = dict(os.environ, NO_COLOR="1")
    rc, output = run(["ansible-lint", "--profile", "production", "--offline", "--nocolor"], env=env,
                     log_name="lint.log")
    match = re.search(r"(Passed|Failed): (\d+) failure\(s\), (\d+) warning\(s\) (?:on|in) (\d+) files", output)
    if not match:
        return Result("lint", 0, 1, "ansible-lint printed no summary (exit %d)" % rc, unit="files linted")
    files, failures = int(match.group(4)), int(match.group(2))
    if rc != 0 and failures == 0:
        failures = 1
    # ansible-lint reports failures (rule violations), not failing files: every file is counted, clean or not.
    return Result("lint", files - min(failures, files), failures, "%d rule violations" % failures if failures else "",
                  unit="files linted")


def molecule():
    env = dict(os.environ, NO_COLOR="1", PY_COLORS="0", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    rc, output = run(["molecule", "test", "--all"], env=env, log_name="molecule.log")
    # One check = one "Check ..." task result on one Engine of the fleet during a scenario's verify.
    passed = failed = 0
    scenarios = set()
    task, in_verify = "", False
    for line in output.splitlines():
        action = re.search(r"\[(\w+) > (\w+)\] Executing", line)
        if action:
            scenarios.add(action.group(1))
            in_verify = action.group(2) == "verify"
            continue
        if not in_verify:
            continue
        heading = re.search(r"TASK \[(.+?)\]", line)
        if heading:
            task = heading.group(1).split(" : ")[-1]
        elif task.startswith("Check"):
            passed += bool(re.search(r"\bok: \[", line))
            failed += bool(re.search(r"\b(fatal|failed): \[", line))
    if rc != 0 and not failed:
        failed = 1
    if not passed and not failed:
        return Result("molecule", 0, 1, "molecule ran no verify checks (exit %d)" % rc, unit="verify checks")
    return Result("molecule", passed, failed, "%d scenarios (%s), each check counted once per Engine"
                  % (len(scenarios), ", ".join(sorted(scenarios))), unit="verify checks")


def main(argv):
    layers = list(LAYERS) if not argv or argv == ["all"] else argv
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        sys.exit("run_tests.py: unknown layer(s) %s; choose from %s or all" % (", ".join(unknown), ", ".join(LAYERS)))
    actions = {
        "unit": unit,
        "sanity": sanity,
        "lint": lint,
        "integration": lambda: pytest_layer("integration", ["tests/integration"], ["-n", "2"]),
        "reliability": reliability,
        "molecule": molecule,
    }
    # Every layer runs with a home of its own under the work dir: what Ansible, ansible-lint, ansible-test, molecule
    # and the roles keep under ~ lands there, and the user's own home is checked to be as it was.
    user_home = os.path.expanduser("~")
    home = os.environ["HOME"] = os.environ.get("ENGINE_OPS_TEST_HOME") or os.path.join(WORK, "home")
    os.makedirs(home, exist_ok=True)
    # On the managed host (this one) Ansible expands ~ in remote_tmp and async_dir from the user's passwd entry,
    # not from HOME: both are named outright.
    os.environ["ANSIBLE_REMOTE_TEMP"] = os.path.join(home, ".ansible", "tmp")
    os.environ["ANSIBLE_ASYNC_DIR"] = os.path.join(home, ".ansible_async")
    watched = [os.path.join(user_home, name) for name in (".ansible", ".ansible_async", ".engine_ops")]
    guard = HomeGuard(watched)
    beside = {}  # layer -> the requested layers that run beside it
    for layer in layers:
        others = [other for other in BESIDE.get(layer, ()) if other in layers]
        if others:
            beside[layer] = others
    results, began_all = {}, time.monotonic()
    for layer in [layer for layer in layers if not any(layer in others for others in beside.values())]:
        companion = Companion(beside.get(layer, []), actions, results)
        if companion.layers:
            print("\n===== %s run beside %s; their output follows when they end =====" % (", ".join(companion.layers), layer),
                  flush=True)
            companion.start()
        print("\n===== layer %s =====" % layer, flush=True)
        action = functools.partial(reliability, before_serial=companion.join) if layer == "reliability" else actions[layer]
        results[layer] = timed(action)
        companion.join()
        for other in companion.layers:
            guard.check(results[other])
        guard.check(results[layer])
    ordered = [results[layer] for layer in layers]
    print(summary(ordered, time.monotonic() - began_all, beside))
    return 0 if all(r.ok for r in ordered) else 1


def timed(action):
    began = time.monotonic()
    result = action()
    result.seconds = time.monotonic() - began
    return result


class Companion:
    """Layers run one after the other in a thread beside another layer, their output kept and printed once they end."""

    def __init__(self, layers, actions, results):
        self.layers, self.actions, self.results = layers, actions, results
        self.thread = threading.Thread(target=self.run)
        self.printed = False

    def start(self):
        self.thread.start()

    def run(self):
        for layer in self.layers:
            QUIET.output = []
            try:
                self.results[layer] = timed(self.actions[layer])
            except Exception as error:  # pylint: disable=broad-except  # reported as the layer's failure, not lost
                self.results[layer] = Result(layer, 0, 1, "the layer could not run: %s" % error)
            self.results[layer].output = "".join(QUIET.output)

    def join(self):
        """Wait for the layers (once started) and print their output, once."""
        if self.thread.ident is not None:  # started
            self.thread.join()
        if self.layers and not self.printed:
            self.printed = True
            for layer in self.layers:
                print("\n===== layer %s (ran beside another layer) =====\n%s" % (layer, self.results[layer].output),
                      flush=True)


class HomeGuard:
    """Fails a layer that wrote into the user's own ~/.ansible, ~/.ansible_async or ~/.engine_ops."""

    def __init__(self, watched):
        self.watched = watched
        self.before = set().union(*(tree(path) for path in watched))

    def check(self, result):
        written = sorted(set().union(*(tree(path) for path in self.watched)) - self.before)
        if written:  # the tests keep every artefact under the work dir
            result.failed += 1
            result.note = ("%s; " % result.note if result.note else "") + "wrote into the user's home: %s" % (
                ", ".join(written[:5]) + (" ..." if len(written) > 5 else ""))
            self.before |= set(written)


def tree(top):
    """`top` and every path under it (nothing when it does not exist)."""
    found = set([top]) if os.path.lexists(top) else set()
    for folder, dirs, files in os.walk(top):
        found.update(os.path.join(folder, name) for name in dirs + files)
    return found


def summary(results, wall, beside=None):
    """One line per layer in its own unit with its duration; the closing line counts test cases only (pytest's), and
    names any other layer that failed, so checks of different kinds are never added up."""
    lines = ["", "===== summary ====="]
    for r in results:
        state = "ok" if r.ok else ("NO TESTS" if r.passed == 0 and r.failed == 0 else "FAILED")
        lines.append("%-12s %-8s %4d passed %4d failed  %-14s %6.0fs%s"
                     % (r.layer, state, r.passed, r.failed, r.unit, r.seconds, "  (%s)" % r.note if r.note else ""))
    cases = [r for r in results if r.unit == "test cases"]
    others = [r for r in results if r.unit != "test cases"]
    closing = "%d passed, %d failed" % (sum(r.passed for r in cases), sum(r.failed for r in cases))
    closing += " (test cases of %s)" % ", ".join(r.layer for r in cases) if cases else " (no test case layer ran)"
    if others:
        bad = [r.layer for r in others if not r.ok]
        closing += "; %s: %s" % (", ".join(r.layer for r in others), "FAILED " + ", ".join(bad) if bad else "ok")
    beside = beside or {}
    together = "; ".join("%s beside %s" % (" and ".join(others), layer) for layer, others in sorted(beside.items()))
    own = sum(r.seconds for r in results)
    lines.append("total %.0fs wall clock" % wall
                 + (" (%s; the layers' own times add up to %.0fs)" % (together, own) if together else ""))
    lines.append(closing)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
