"""Run real ansible-playbook processes from tests and read their results as data."""

import json
import os
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_inventory(directory, group, hosts, group_vars=None):
    """Write a YAML inventory where every host runs on this machine with the controller's Python."""
    variables = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    variables.update(group_vars or {})
    path = os.path.join(str(directory), "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({group: {"hosts": hosts, "vars": variables}}, handle)
    return path


def run_playbook(playbook, inventory, *args, check=False, timeout=600, env=None):
    """Return (returncode, json_report); the report is ansible.posix.json's document. `env`: more environment."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_ROLES_PATH=os.path.join(REPO, "tests", "roles"), ANSIBLE_NOCOLOR="1", **(env or {}))
    path = playbook if playbook.startswith("engine_ops.") else os.path.join(REPO, playbook)  # FQCN or a file
    cmd = ["ansible-playbook", "-i", inventory, path] + list(args)
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        # The JSON document comes first; the fleet summary table (an aggregate callback) may follow it.
        report, end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
        report["_trailer"] = proc.stdout[proc.stdout.index("{") + end:]
        report["_stderr"] = proc.stderr
        report["_before"] = proc.stdout[:proc.stdout.index("{")]
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON report (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])) from None
    return proc.returncode, report


def failed_messages(report):
    """The messages of the failed task results of a report."""
    return [r["msg"] for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
            if r.get("failed") and r.get("msg")]


def changed_tasks(report, host):
    """Names of the tasks that reported a change on `host`, without the "role : " prefix."""
    names = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result and result.get("changed"):
                names.append(task["task"]["name"].split(" : ", 1)[-1])
    return names


def failures(report):
    return {host: stats["failures"] + stats["unreachable"] for host, stats in report["stats"].items()
            if stats["failures"] or stats["unreachable"]}


def run_module(module, args, check=False, diff=False, timeout=600, interpreter=None):
    """Run one module of the collection on localhost through the `ansible` CLI; return its result.

    `interpreter` is the Python that runs the module (default: the controller's own).
    """
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = ["ansible", "localhost", "-m", "engine_ops.lifecycle." + module, "-a", json.dumps(args)]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    cmd += ["-e", "ansible_python_interpreter=" + interpreter] if interpreter else []
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        report = json.loads(proc.stdout)
        return report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible printed no JSON result (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])) from None
