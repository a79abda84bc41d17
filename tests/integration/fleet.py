"""A small fleet of reference Engines driven by the real playbooks, and how tests read what the playbooks left.

Used by the fleet, notify and aftermath tests and by tests/reliability.
"""

import json
import os
import signal
import subprocess
import uuid

from ansible_run import REPO, run_module, write_inventory
from services import ENGINE_API_KEY


def fleet(engines, named, prefix, tmp_path, backends=("sqlite", "sqlite", "postgres"), version="2.3.1", image=None):
    """Engines with history, an inventory that keeps every file under tmp_path, and the turns they hold."""
    members, hosts = [], {}
    for backend in backends:
        engine = engines.start(version, engines.brain(backend), image=image)
        engine.name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
        engine.container.rename(engine.name)
        named(engine.name)
        members.append(engine)
    for engine in members:
        engine.wait_healthy()
        engine.kept = ["kept-%s-%d" % (engine.name[-6:], n) for n in range(3)]
        for rid in engine.kept:
            engine.execute(rid, request_id=rid)
        hosts[engine.name] = {"engine_container": engine.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY,
                              "brain_backend": engine.brain.backend}
    work = tmp_path / "work"
    inventory = write_inventory(tmp_path, "engines", hosts, group_vars={
        "engine_snapshot_store": str(work / "store"), "engine_state_dir": str(work / "state"),
        "engine_ledger_path": str(work / "ledger.jsonl"), "engine_report_dir": str(work / "reports"),
        "upgrade_watch_seconds": 2, "upgrade_window_seconds": 1,
        # a release that never becomes healthy is given up on after 20 s, not the production 60
        "upgrade_health_timeout": 20, "rollback_health_timeout": 20})
    return members, inventory, work


def upgraded_by_hand(engines, engine, work, version="2.4.0", env=None):
    """The state upgrade.yml leaves, made directly: the pinned pre-upgrade snapshot (the snapshot module, as the
    upgrade takes it), then docker rm and docker run on `version`, whose start-up migrates the brain forward.
    Returns the Engine on `version` (same name, brain and port) and the snapshot's id."""
    taken = run_module("brain_snapshot", {"container": engine.name, "backend": engine.brain.backend,
                                          "store": str(work / "store"), "pinned": True, "rollback_target": True,
                                          "reason": "pre-upgrade engine:2.3.1 -> engine:%s" % version})
    assert not taken.get("failed"), taken.get("msg")
    upgraded = recreated(engines, engine, dict(env or {}), version=version)
    upgraded.wait_healthy()
    assert upgraded.health()[1]["version"] == version
    return upgraded, taken["snapshot"]["id"]


def recreated(engines, engine, env, version="2.3.1"):
    """The same Engine (name, brain, port) on `version` in a new container with `env` added; the old container goes.
    With another version this is an upgrade by hand (docker rm, docker run), as an operator does it without us."""
    engine.container.remove(force=True)
    fresh = engines.start(version, engine.brain, env=env, port=engine.port)
    fresh.container.rename(engine.name)
    fresh.name, fresh.kept = engine.name, getattr(engine, "kept", None)
    return fresh


def episodes(engine):
    return sorted(r[1] for r in engine.rows("episodes"))


def report_rows(work, operation):
    """Rows of the newest fleet summary JSON for an operation."""
    names = sorted(n for n in os.listdir(str(work / "reports")) if n.startswith(operation + "-"))
    with open(str(work / "reports" / names[-1])) as handle:
        return {row["host"]: row for row in json.load(handle)["engines"]}


def ledger(work):
    with open(str(work / "ledger.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def task_results(report, suffix):
    return [r for p in report["plays"] for t in p["tasks"] if t["task"]["name"].endswith(suffix) for r in t["hosts"].values()]


def spawn_playbook(inventory, *args, env=None, playbook="playbooks/rollback.yml"):
    """Start ansible-playbook in its own process group (so a test can kill it and all it started)."""
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    environ.update(env or {})
    return subprocess.Popen(["ansible-playbook", "-i", inventory, os.path.join(REPO, playbook)] + list(args),
                            cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def descendants(pid):
    """Every process below `pid` (children, theirs, ...), read from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_tree(proc):
    """SIGKILL ansible-playbook and everything it started, as a dying controller host takes it all down.

    Its process group is not enough: ansible-core's workers call setsid, so a module they run (an image switch
    half done) would go on without its controller. The tree is frozen first (SIGSTOP until nothing new appears),
    so nothing escapes by forking or by being re-parented, then killed."""
    stopped = set()
    while True:
        tree = set([proc.pid] + descendants(proc.pid)) - stopped
        if not tree:
            break
        for pid in tree:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= tree
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def checkpoint_entries(work, engine):
    """The phases of the Engine's rollback checkpoint, each {"phase", "at"}; [] while there is none."""
    try:
        with open(str(work / "state" / ("%s.rollback.json" % engine.name))) as handle:
            return json.load(handle)["phases"]
    except (IOError, ValueError):
        return []


def checkpoint_phases(work, engine):
    return [p["phase"] for p in checkpoint_entries(work, engine)]
