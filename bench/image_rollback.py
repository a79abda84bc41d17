"""Benchmark: image rollback of one Engine, the module path against the runbook's manual commands.

    python bench/image_rollback.py [--rounds 5] [--out bench/results]

Each round puts a fresh reference Engine on 2.3.2 (not timed), then rolls it back to 2.3.1 either
with `engine_ops.lifecycle.engine_image` (a real `ansible` process) or with the manual sequence
(`docker stop -t 30`, `docker rm`, `docker run`, poll /health with curl). The methods alternate.
A separate process polls /health every 10 ms; downtime is from its first failed answer to its
first healthy answer after that. 2.3.2 -> 2.3.1 is used because image-only rollback presumes no
forward-only migration (2.4.0 -> 2.3.1 needs the data layer too).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Downtime, ansible_module, sh, wait_healthy  # noqa: E402
from _plot import bars, write  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 18911


def run_args(name, volume, image):
    return ["docker", "run", "-d", "--name", name, "--network", "host", "--restart", "unless-stopped",
            "-e", "ENGINE_PORT=%d" % PORT, "-e", "ENGINE_BIND=127.0.0.1", "-e", "ENGINE_STARTUP_SECONDS=1",
            "-v", "%s:/data" % volume, image]


MANUAL = """set -e
docker stop -t 30 {name} >/dev/null
docker rm {name} >/dev/null
{run} >/dev/null
until curl -fsS -m 1 http://127.0.0.1:{port}/health 2>/dev/null | grep -q '"status": "ok"'; do sleep 0.05; done
"""


def rollback_manual(name, volume):
    run = " ".join(shlex.quote(a) for a in run_args(name, volume, "engine:2.3.1"))
    script = MANUAL.format(name=name, port=PORT, run=run)
    sh(["bash", "-c", script])


def rollback_module(name, state_dir):
    ansible_module("engine_image", {"container": name, "version": "2.3.1", "state_dir": state_dir,
                                    "health_url": "http://127.0.0.1:%d/health" % PORT})


def one_round(method, workdir):
    name = "bench-%s" % uuid.uuid4().hex[:6]
    volume = name + "-data"
    sh(run_args(name, volume, "engine:2.3.2"))
    try:
        wait_healthy("http://127.0.0.1:%d/health" % PORT, 60, "the Engine on 2.3.2")
        with Downtime("http://127.0.0.1:%d/health" % PORT, workdir) as probe:
            began = time.monotonic()
            if method == "module":
                rollback_module(name, os.path.join(workdir, "state"))
            else:
                rollback_manual(name, volume)
            wall = time.monotonic() - began
        image = sh(["docker", "inspect", "-f", "{{.Config.Image}}", name]).stdout.strip()
        if image != "engine:2.3.1":
            raise SystemExit("bench: %s left the Engine on %s" % (method, image))
        return {"method": method, "wall_seconds": round(wall, 3), "downtime_seconds": round(probe.seconds, 3)}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        for index in range(args.rounds * 2):
            method = ("module", "manual")[index % 2]
            rounds.append(one_round(method, workdir))
            last = rounds[-1]
            print("round %2d %-7s wall %.2fs downtime %.2fs"
                  % (index // 2 + 1, method, last["wall_seconds"], last["downtime_seconds"]), flush=True)
    summary = {}
    for method in ("module", "manual"):
        mine = [r for r in rounds if r["method"] == method]
        summary[method] = {key: statistics.median(r[key] for r in mine) for key in ("wall_seconds", "downtime_seconds")}
    summary["ratio_module_to_manual"] = {
        key: round(summary["module"][key] / summary["manual"][key], 3) for key in ("wall_seconds", "downtime_seconds")}
    report = {"benchmark": "image rollback 2.3.2 -> 2.3.1, one Engine, 1 s start-up", "rounds": rounds,
              "median": summary, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "image_rollback.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    write(os.path.join(args.out, "image-rollback.svg"), bars(
        "Image rollback of one Engine: engine_image vs the manual commands (median of %d)" % args.rounds, "seconds",
        ["wall time", "downtime"], ["engine_image", "manual"],
        {"engine_image": {"wall time": summary["module"]["wall_seconds"], "downtime": summary["module"]["downtime_seconds"]},
         "manual": {"wall time": summary["manual"]["wall_seconds"], "downtime": summary["manual"]["downtime_seconds"]}}))
    print("median wall: module %.2fs, manual %.2fs (ratio %.2f)" % (
        summary["module"]["wall_seconds"], summary["manual"]["wall_seconds"],
        summary["ratio_module_to_manual"]["wall_seconds"]))
    print("median downtime: module %.2fs, manual %.2fs (ratio %.2f)" % (
        summary["module"]["downtime_seconds"], summary["manual"]["downtime_seconds"],
        summary["ratio_module_to_manual"]["downtime_seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
