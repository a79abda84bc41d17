"""Shared helpers of the benchmarks: a downtime prober, module runs, timing, peak memory."""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

import _prober  # noqa: E402  (bench/ is on sys.path: the scripts put it there)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Bench Engines run the production way: only the key's SHA-256 in their environment, the key in X-Engine-Key.
ENGINE_API_KEY = "bench-engine-key"
ENGINE_KEY_HASH = hashlib.sha256(ENGINE_API_KEY.encode()).hexdigest()


class Downtime:
    """A separate process polls /health (every 10 ms for one Engine); downtime = first failed to first healthy after it.

    With several URLs one process polls them in turn; `per_url` holds each Engine's downtime and `seconds` the first.
    """

    def __init__(self, url, workdir, interval=0.01):
        self.urls = [url] if isinstance(url, str) else list(url)
        self.interval = interval
        self.out = os.path.join(workdir, "probe-%d" % time.monotonic_ns())

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_prober.py"), self.out,
                                      str(self.interval)] + self.urls)
        wait_for(lambda: os.path.exists(self.out) and os.path.getsize(self.out) > 0, 10, "the health prober")
        return self

    def __exit__(self, *exc):
        time.sleep(max(0.1, 3 * self.interval))  # a few samples after the end, to see the Engines healthy
        open(self.out + ".stop", "w").close()
        self.proc.wait(10)
        samples = {}
        with open(self.out, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    stamp, index, ok = line.split()
                    samples.setdefault(int(index), []).append((float(stamp), ok == "1"))
        self.per_url = [outage(samples.get(index, [])) for index in range(len(self.urls))]
        self.seconds = self.per_url[0]
        return False


def outage(samples):
    """Seconds from the first unhealthy answer to the first healthy one after it (0.0 if never unhealthy)."""
    first_bad = next((t for t, ok in samples if not ok), None)
    if first_bad is None:
        return 0.0
    back = next((t for t, ok in samples if ok and t > first_bad), None)
    return (back - first_bad) if back else float("nan")


def healthy(url):
    """One /health answer: 2xx and status ok (the prober's own check)."""
    parts = urlparse(url)
    return _prober.healthy(parts.hostname, parts.port, parts.path)


def wait_healthy(url, timeout, what):
    """Poll `url` until the Engine is healthy; fail the benchmark naming `what` after `timeout` seconds."""
    wait_for(lambda: healthy(url), timeout, what, interval=0.05)
    return url


def wait_for(condition, timeout, what, interval=0.02):
    """Poll `condition` until it is true; fail the benchmark after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("bench: timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


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


def module_process(module, args, python=None):
    """Run a module file as its own process (under `python`, default this one); return (seconds, peak RSS in MiB, result)."""
    collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".work", "collections"))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "print(p.stdout)")
    # Another Python (the one that loads SQLite extensions) gets ansible-core from this one, as AnsiballZ would ship it.
    import ansible  # pylint: disable=import-outside-toplevel
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([collections.split(":")[0],
                                                       os.path.dirname(os.path.dirname(ansible.__file__))]))
    out = subprocess.run([sys.executable, "-c", wrapper, python or sys.executable,
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
