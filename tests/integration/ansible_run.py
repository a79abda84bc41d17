"""Run real ansible-playbook processes from tests and read their results as data."""

import json
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# where the set-up installed this collection and its dependencies (the first entry of the collections path)
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep)[0]


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


# Modules with an action plugin run on the controller first: only the `ansible` CLI runs them as a playbook does.
ACTION_PLUGINS = frozenset(name[:-3] for name in os.listdir(os.path.join(REPO, "plugins", "action")) if name.endswith(".py"))


def run_module(module, args, check=False, diff=False, timeout=600, interpreter=None):
    """Run one module of the collection on this host and return its result.

    The module runs as its own process on the JSON arguments Ansible gives it (with check and diff mode as Ansible
    passes them), importing the collection from the collections path. A module with an action plugin, or one run
    by another Python (`interpreter`, which has no Ansible of its own), goes through the `ansible` CLI, which ships
    the module and its module_utils to that Python as a playbook task does.
    """
    if module in ACTION_PLUGINS or interpreter:
        return run_module_through_ansible(module, args, check, diff, timeout, interpreter)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    remote_tmp = os.environ.get("ANSIBLE_REMOTE_TEMP") or os.path.join(os.path.expanduser("~"), ".ansible", "tmp")
    payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff, _ansible_remote_tmp=remote_tmp,
                   _ansible_keep_remote_files=False, _ansible_module_name="engine_ops.lifecycle." + module)
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.engine_ops.lifecycle.plugins.modules." + module],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON result (rc %d):\n%s\n%s"
                             % (module, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])) from None
    result.setdefault("changed", False)  # as the controller does for a result without it
    return result


def run_module_through_ansible(module, args, check, diff, timeout, interpreter):
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
