"""Shared helpers of the benchmarks: a downtime prober, module runs, timing, peak memory."""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Downtime:
    """A separate process polls /health every 10 ms; downtime = first failed to first healthy after it."""

    def __init__(self, url, workdir):
        self.url, self.out = url, os.path.join(workdir, "probe-%d" % time.monotonic_ns())

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_prober.py"), self.url, self.out])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        open(self.out + ".stop", "w").close()
        self.proc.wait(10)
        with open(self.out, encoding="utf-8") as handle:
            samples = [(float(t), ok == "1") for t, ok in (line.split() for line in handle if line.strip())]
        first_bad = next((t for t, ok in samples if not ok), None)
        back = next((t for t, ok in samples if ok and first_bad is not None and t > first_bad), None)
        self.seconds = 0.0 if first_bad is None else ((back - first_bad) if back else float("nan"))
        return False


def ansible_module(module, args):
    """Run a collection module through the `ansible` CLI (what a playbook pays); return its result."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run(["ansible", "localhost", "-m", "engine_ops.lifecycle." + module, "-a", json.dumps(args)],
                          env=env, capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed"):
        raise SystemExit("bench: %s failed: %s" % (module, result.get("msg")))
    return result


def module_process(module, args):
    """Run a module file as its own process; return (seconds, peak RSS in MiB, result)."""
    collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".work", "collections"))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "print(p.stdout)")
    env = dict(os.environ, PYTHONPATH=collections.split(":")[0])
    out = subprocess.run([sys.executable, "-c", wrapper, sys.executable,
                          os.path.join(REPO, "plugins", "modules", module + ".py"), handle.name],
                         env=env, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    first, rest = out.split("\n", 1)
    seconds, rss = first.split()
    result = json.loads(rest[rest.index("{"):])
    if result.get("failed"):
        raise SystemExit("bench: %s failed: %s" % (module, result.get("msg")))
    return float(seconds), int(rss) / 1024.0, result


def timed(func, *args, **kwargs):
    began = time.monotonic()
    value = func(*args, **kwargs)
    return time.monotonic() - began, value


def sh(cmd, **kwargs):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, capture_output=True, text=True, **kwargs)
