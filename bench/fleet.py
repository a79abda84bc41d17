"""Benchmark: rollback.yml on fleets of 1, 5 and 20 reference Engines, image-only and with data.

    python bench/fleet.py [--sizes 1,5,20] [--runs data:fast,image:fast,data:realistic,data:fast:free@20]
                          [--forks 20] [--rounds 1] [--out bench/results]

A run is mode:profile[:strategy][@sizes]; the strategy is the play's (rollback_strategy: linear, the default, or
free), sizes default to --sizes (e.g. data:fast:free@20 runs only the 20-Engine fleet with the free strategy).

Each Engine is its own container with its own brain on its own loopback port. Not timed: the fleet is brought
to the incident (2.3.1 with history, a pinned pre-upgrade snapshot taken by brain_snapshot, the bad release,
turns in the bad window) with the docker CLI, eight Engines at a time. Timed: `ansible-playbook playbooks/rollback.yml -e version=v2.3.1 -f <forks>`, as
an operator runs it.

  data:  2.4.0 -> 2.3.1. 2.4.0 ships a forward-only migration, so the brain is restored too (auto decides).
  image: 2.3.2 -> 2.3.1. An image-only rollback from 2.4.0 does not exist (2.3.1 answers MIGRATION_REQUIRED on a
         migrated brain and the playbook falls through to the data rollback), so the image-only fleet comes
         from the patch release without a schema change; auto decides on image-only.

Two Engine profiles. fast: the reference Engine's 1 s start-up and nothing in flight, so almost everything left
is the tool's own overhead (the worst case for scaling). realistic: turns as long as the contract's p50 (8 s)
keep arriving on every Engine, one after the other, during the whole rollback, so one is in flight when the drain
begins and must be let finish (a turn cut mid-way fails the benchmark), and a 5 s start-up.

Reported per fleet size: wall time of the playbook, each Engine's downtime (one prober process polls every
Engine's /health in turn, every 50 ms), where each Engine's time went (drain, brain restore, health waiting and
docker calls as the modules report them; the rest - module start-up, controller work, waiting for other hosts -
as Ansible overhead), and the CPU seconds of the controller and of the module processes apart. Ratios are
against the 1-Engine fleet of the same run. Target: 20 Engines at forks >= 20 in under 2x the time of one.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (ENGINE_API_KEY, ENGINE_KEY_HASH, REPO, Downtime, module_process, sh, wait_for,  # noqa: E402
                     wait_healthy)

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_PORT = 19100
MODES = {"data": "2.4.0", "image": "2.3.2"}
PROFILES = {"fast": {"startup": 1, "turn": 0}, "realistic": {"startup": 5, "turn": 8}}
CATEGORIES = ("drain", "restore", "health", "docker")
TURN_ID = "bench-in-flight"


def inventory(work, prefix, size):
    hosts = {}
    for index in range(size):
        name = "%s-%02d" % (prefix, index + 1)
        hosts[name] = {"engine_port": BASE_PORT + index, "engine_container": name,
                       "engine_url": "http://127.0.0.1:%d" % (BASE_PORT + index), "engine_api_key": ENGINE_API_KEY}
    data = {"engines": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "engine_image_repository": "engine", "brain_backend": "sqlite",
        "engine_snapshot_store": os.path.join(work, "snapshots"), "engine_state_dir": os.path.join(work, "state"),
        "engine_ledger_path": os.path.join(work, "ledger.jsonl"), "engine_report_dir": os.path.join(work, "reports")}}}
    path = os.path.join(work, "inventory.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path, hosts


def playbook(args, env_extra=None):
    """Run ansible-playbook; return (wall seconds, CPU seconds of it and everything it ran)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), **(env_extra or {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    proc = subprocess.run(["ansible-playbook"] + args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
        raise SystemExit("bench: ansible-playbook %s failed (rc %d)" % (args[0], proc.returncode))
    playbook.peak_rss_mib = after.ru_maxrss / 1024.0  # the largest process so far (the controller's main process)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def counting_interpreter(work):
    """A Python for the modules that appends each module process's CPU seconds to a file (GNU time).

    Every Engine here is a local host, so its modules run on this machine's cores beside the controller; on a
    real fleet they run on each Engine's host. Counting them apart says which part of the CPU is which.
    """
    path, log = os.path.join(work, "python-counted"), os.path.join(work, "module-cpu")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('#!/bin/sh\nexec /usr/bin/time -a -o %s -f "%%U %%S" %s "$@"\n' % (log, sys.executable))
    os.chmod(path, 0o755)
    return path, log


def module_cpu(log):
    total, count = 0.0, 0
    with open(log, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 2:
                total += float(parts[0]) + float(parts[1])
                count += 1
    return total, count


def remove_fleet(prefix):
    ids = sh(["docker", "ps", "-aq", "--filter", "name=^%s-" % prefix]).stdout.split()
    if ids:
        sh(["docker", "rm", "-f"] + ids)
    volumes = sh(["docker", "volume", "ls", "-q", "--filter", "name=^%s-" % prefix]).stdout.split()
    if volumes:
        sh(["docker", "volume", "rm", "-f"] + volumes)


class Traffic:
    """Turns of `seconds` on every Engine, one after the other, for as long as the rollback runs.

    So a turn is in flight whenever the drain begins, as in production. A turn the Engine refused (503 while it
    drains or starts) or could not take (down) is fine; a turn cut in the middle (connection dropped, 5xx
    after it started) is a lost turn, and the benchmark fails on it.
    """

    def __init__(self, bases, seconds):
        self.bases, self.seconds = bases, seconds
        self.stop = threading.Event()
        self.outcomes = dict((base, {"completed": 0, "refused": 0, "down": 0, "cut": []}) for base in bases)
        self.threads = [threading.Thread(target=self.run, args=(base,), daemon=True) for base in bases]

    def run(self, base):
        tally = self.outcomes[base]
        while not self.stop.is_set():
            body = json.dumps({"message": "in flight during the rollback", "duration_seconds": self.seconds}).encode()
            request = urllib.request.Request(base + "/execute", data=body, headers={
                "Content-Type": "application/json", "X-Request-ID": TURN_ID, "X-Engine-Key": ENGINE_API_KEY})
            try:
                response = urllib.request.urlopen(request, timeout=self.seconds + 120)
            except urllib.error.HTTPError as exc:
                if exc.code == 503:
                    tally["refused"] += 1  # draining or starting: the turn was not taken
                else:
                    tally["cut"].append("HTTP %d" % exc.code)
                self.stop.wait(0.2)
                continue
            except (OSError, http.client.HTTPException):
                tally["down"] += 1  # no answer at all: no turn was started
                self.stop.wait(0.2)
                continue
            try:
                response.read()
                tally["completed"] += 1
            except (OSError, http.client.HTTPException) as exc:  # accepted, then dropped mid-turn: a lost turn
                tally["cut"].append(repr(exc))
            finally:
                response.close()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(self.seconds + 130)
        return False


def setup_engine(name, host, bad_version, startup, seed_episodes, store):
    """Not timed: one Engine on 2.3.1 with history, its pinned pre-upgrade snapshot, then on the bad release with
    a few turns in the bad window - the state an incident leaves it in (docker CLI and the snapshot module)."""
    volume = name + "-data"
    port = host["engine_port"]
    sh(["docker", "volume", "create", volume])
    sh(["docker", "run", "--rm", "--network", "none", "-v", volume + ":/data", "engine:2.3.1", "python3", "-m", "engine",
        "seed", "--episodes", str(seed_episodes), "--days", "30"])
    run = ["docker", "run", "-d", "--name", name, "--network", "host", "--restart", "unless-stopped",
           "-e", "ENGINE_PORT=%d" % port, "-e", "ENGINE_BIND=127.0.0.1", "-e", "ENGINE_STARTUP_SECONDS=%d" % startup,
           "-e", "ENGINE_KEY_HASH=" + ENGINE_KEY_HASH,
           "--label", "com.docker.compose.project=" + name, "--label", "com.docker.compose.service=engine",
           "-v", volume + ":/data"]
    health = host["engine_url"] + "/health"
    sh(run + ["engine:2.3.1"])
    wait_healthy(health, 120, "%s to be healthy on 2.3.1" % name)
    module_process("brain_snapshot", {"container": name, "store": store, "pinned": True, "rollback_target": True,
                                      "reason": "pre-upgrade"})
    sh(["docker", "stop", "-t", "30", name])
    sh(["docker", "rm", name])
    sh(run + ["engine:" + bad_version])
    wait_healthy(health, 120, "%s to be healthy on %s" % (name, bad_version))
    for turn in range(3):
        body = json.dumps({"message": "bad window %d" % turn, "duration_seconds": 0}).encode()
        request = urllib.request.Request(host["engine_url"] + "/execute", data=body,
                                         headers={"Content-Type": "application/json", "X-Engine-Key": ENGINE_API_KEY})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def turns_started(hosts):
    """How many Engines have logged the start of the in-flight turn (so it is really running when timing starts)."""
    started = 0
    for name in hosts:
        logs = sh(["docker", "logs", name]).stdout
        started += any(TURN_ID in line and "turn started" in line for line in logs.splitlines())
    return started


def breakdown(timeline, hosts):
    """Per host: wall from its first task to its last, the work modules reported, the rest as overhead."""
    rows = {}
    for host in hosts:
        tasks = [t for t in timeline["tasks"] if t["host"] == host]
        work = dict((c, 0.0) for c in CATEGORIES)
        for task in tasks:
            for category, seconds in task["work"].items():
                work[category] = work.get(category, 0.0) + seconds
        span = max(t["end"] for t in tasks) - min(t["start"] for t in tasks)
        trips = [t for t in tasks if t["status"] != "skipped" and t["action"].startswith("engine_ops.")]
        rows[host] = dict(work, span=span, overhead=span - sum(work.values()), module_calls=len(trips),
                          tasks=len([t for t in tasks if t["status"] != "skipped"]))
    return rows


def one_run(mode, profile, size, forks, work, seed_episodes, strategy="linear"):
    prefix = "bfleet-%s-%s" % (mode, uuid.uuid4().hex[:4])
    timing = PROFILES[profile]
    path, hosts = inventory(work, prefix, size)
    interpreter, cpu_log = counting_interpreter(work)
    try:
        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(size, 8)) as pool:
            list(pool.map(lambda item: setup_engine(item[0], item[1], MODES[mode], timing["startup"], seed_episodes,
                                                    os.path.join(work, "snapshots")), hosts.items()))
        setup = time.monotonic() - began
        timeline_path = os.path.join(work, "timeline-%s.json" % prefix)
        env = {"ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"),
               "ANSIBLE_CALLBACKS_ENABLED": "bench_timeline", "ENGINE_OPS_BENCH_TIMELINE": timeline_path}
        bases = [h["engine_url"] for h in hosts.values()]
        traffic = Traffic(bases if timing["turn"] else [], timing["turn"])
        with traffic, Downtime([base + "/health" for base in bases], work, interval=0.05) as probe:
            if timing["turn"]:
                wait_for(lambda: turns_started(hosts) >= size, 60, "a turn in flight on every Engine", interval=0.1)
            open(cpu_log, "w").close()
            started = time.time()
            wall, cpu = playbook(["playbooks/rollback.yml", "-i", path, "-f", str(forks), "-e", "version=v2.3.1",
                                  "-e", "reason=benchmark", "-e", "ansible_python_interpreter=" + interpreter,
                                  "-e", "rollback_strategy=" + strategy], env)
        cut = dict((base, t["cut"]) for base, t in traffic.outcomes.items() if t["cut"])
        if cut:
            raise SystemExit("bench: turns were cut during the rollback (a drain must let them finish): %s" % cut)
        modules_cpu, module_runs = module_cpu(cpu_log)
        images = sh(["docker", "inspect", "-f", "{{.Config.Image}}"] + list(hosts)).stdout.split()
        if set(images) != {"engine:2.3.1"}:
            raise SystemExit("bench: the rollback left images %s" % sorted(set(images)))
        with open(timeline_path, encoding="utf-8") as handle:
            timeline = json.load(handle)
        with open(os.path.join(work, "ledger.jsonl"), encoding="utf-8") as handle:
            ledger = [json.loads(line) for line in handle if line.strip()]
        data_rollbacks = [e["result"]["data_rollback"] for e in ledger if e.get("operation") == "rollback"]
        if data_rollbacks != [mode == "data"] * size:
            raise SystemExit("bench: expected %s rollbacks, the ledger says %s" % (mode, data_rollbacks))
        per_host = breakdown(timeline, hosts)
        if os.environ.get("ENGINE_OPS_BENCH_KEEP"):
            shutil.copy(timeline_path, os.environ["ENGINE_OPS_BENCH_KEEP"])
    finally:
        remove_fleet(prefix)
    first_task = min(t["start"] for t in timeline["tasks"])
    by_task = {}
    for task in timeline["tasks"]:
        by_task.setdefault(task["task"], []).append(task["end"] - task["start"])
    slowest = sorted(((statistics.mean(v), k) for k, v in by_task.items()), reverse=True)[:12]
    mean = dict((key, round(statistics.mean(r[key] for r in per_host.values()), 3))
                for key in CATEGORIES + ("span", "overhead", "module_calls", "tasks"))
    return {"mode": mode, "profile": profile, "strategy": strategy, "engines": size, "forks": forks, "setup_seconds": round(setup, 1),
            "wall_seconds": round(wall, 3), "startup_seconds": round(first_task - started, 3),
            "downtime_seconds": {"median": round(statistics.median(probe.per_url), 3),
                                 "max": round(max(probe.per_url), 3), "per_engine": [round(d, 3) for d in probe.per_url]},
            "per_engine_mean": mean,
            "turns": dict((k, sum(len(t[k]) if k == "cut" else t[k] for t in traffic.outcomes.values()))
                          for k in ("completed", "refused", "down", "cut")),
            "cpu_seconds": {"total": round(cpu, 2), "modules": round(modules_cpu, 2),
                            "controller": round(cpu - modules_cpu, 2), "module_processes": module_runs,
                            "per_engine": round(cpu / size, 2)},
            "peak_rss_mib": round(playbook.peak_rss_mib, 1),
            "slowest_tasks": [{"task": name, "mean_seconds": round(sec, 3)} for sec, name in slowest]}


def run_key(run):
    return "%s:%s" % (run["mode"], run["profile"]) + ("" if run["strategy"] == "linear" else ":" + run["strategy"])


def summarise(runs):
    """Per run key and fleet size: medians, and the wall time as a ratio to one Engine (same mode and profile;
    a run without its own 1-Engine fleet is compared with the linear one)."""
    summary = {}
    for key in sorted(set(run_key(r) for r in runs)):
        mine = [r for r in runs if run_key(r) == key]
        sizes = sorted(set(r["engines"] for r in mine))
        ones = [r["wall_seconds"] for r in mine if r["engines"] == 1] or [
            r["wall_seconds"] for r in runs if r["engines"] == 1 and run_key(r) == ":".join(key.split(":")[:2])]
        one = statistics.median(ones) if ones else None
        summary[key] = {}
        for size in sizes:
            rs = [r for r in mine if r["engines"] == size]
            wall = statistics.median(r["wall_seconds"] for r in rs)
            summary[key]["%d" % size] = {
                "wall_seconds": round(wall, 3),
                "ratio_to_one": round(wall / one, 3) if one else None,
                "downtime_median": round(statistics.median(r["downtime_seconds"]["median"] for r in rs), 3),
                "downtime_max": round(max(r["downtime_seconds"]["max"] for r in rs), 3),
                "cpu_per_engine": round(statistics.median(r["cpu_seconds"]["per_engine"] for r in rs), 2),
                "controller_cpu_per_engine": round(statistics.median(r["cpu_seconds"]["controller"] / size for r in rs), 2),
            }
    return summary


def plot(report, out):
    from _plot import bars, write  # noqa: E402  (local helper)
    summary = report["summary"]
    keys = sorted(summary)
    sizes = sorted({int(s) for k in keys for s in summary[k]})
    groups = ["%d Engine%s" % (s, "" if s == 1 else "s") for s in sizes]

    def series(field):
        return dict((k, dict((g, summary[k].get(str(s), {}).get(field)) for g, s in zip(groups, sizes))) for k in keys)

    base = summary.get("data:fast", {}).get("1")
    write(os.path.join(out, "fleet-wall.svg"), bars(
        "rollback.yml wall time by fleet size (forks >= 20, %d CPUs)" % report["machine"]["cpus"], "seconds", groups,
        keys, series("wall_seconds"), target=("target: 2x one Engine (data:fast)", 2 * base["wall_seconds"]) if base else None))
    write(os.path.join(out, "fleet-downtime.svg"), bars(
        "Per-Engine downtime by fleet size (median over the Engines)", "seconds", groups, keys,
        series("downtime_median")))
    last = [r for r in report["runs"] if r["mode"] == "data" and r["profile"] == "fast"] or report["runs"]
    parts = ("drain", "restore", "health", "docker", "overhead")
    labels = ["%d, %s" % (r["engines"], r["strategy"]) for r in last]
    values = dict((p, dict((label, r["per_engine_mean"][p]) for label, r in zip(labels, last))) for p in parts)
    write(os.path.join(out, "fleet-breakdown.svg"), bars(
        "Where one Engine's rollback time goes (data:fast, mean per Engine)", "seconds", labels, list(parts),
        values, stacked=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20")
    parser.add_argument("--runs", default="data:fast,image:fast,data:realistic,data:fast:free@20",
                        help="mode:profile[:strategy][@sizes]; modes %s, profiles %s" % (sorted(MODES), sorted(PROFILES)))
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed-episodes", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    plans = []
    for spec in args.runs.split(","):
        what, dummy, only = spec.partition("@")
        parts = what.split(":") + ["linear"]
        plans.append((parts[0], parts[1], parts[2], [int(s) for s in only.split("+")] if only else sizes))
    runs = []
    work_root = os.path.join("/var/tmp", "engine_ops-fleet-%s" % uuid.uuid4().hex[:6])
    try:
        for mode, profile, strategy, run_sizes in plans:
            for dummy in range(args.rounds):
                for size in run_sizes:
                    work = os.path.join(work_root, "%s-%s-%s-%d-%d" % (mode, profile, strategy, size, dummy))
                    os.makedirs(work)
                    run = one_run(mode, profile, size, max(args.forks, size), work, args.seed_episodes, strategy)
                    runs.append(run)
                    m, c = run["per_engine_mean"], run["cpu_seconds"]
                    print("%-5s %-9s %-6s %2d Engines forks %2d: wall %6.2fs  downtime median %.2fs max %.2fs | per Engine: "
                          "drain %.2f restore %.2f health %.2f docker %.2f overhead %.2f | CPU per Engine %.2fs "
                          "(modules %.2fs in %d processes)"
                          % (mode, profile, strategy, size, run["forks"], run["wall_seconds"], run["downtime_seconds"]["median"],
                             run["downtime_seconds"]["max"], m["drain"], m["restore"], m["health"], m["docker"],
                             m["overhead"], c["per_engine"], c["modules"] / size, c["module_processes"] // size),
                          flush=True)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    report = {"benchmark": "rollback.yml on fleets of reference Engines", "runs": runs,
              "summary": summarise(runs), "profiles": PROFILES,
              "target": "20 Engines at forks >= 20 in under 2x the wall time of one",
              "machine": {"cpus": os.cpu_count()},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "fleet.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    plot(report, args.out)
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
