"""AWX: the objects as code, jobs run through ansible-runner (the runner AWX uses), and the execution environment.

AWX itself cannot run here. What it would do is reproduced: a private data directory with the project's
playbooks, an inventory, and the survey's answers as extra vars (multiple choice answers as strings,
integers as numbers), run by ansible-runner; the job's artifacts are read from its stats event.
"""

import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
import uuid

import ansible_runner
import pytest
import yaml

from ansible_run import COLLECTIONS, REPO, write_inventory
from conftest import named_engines
from fleet import upgraded_by_hand

AWX_DIR = os.path.join(REPO, "extensions", "awx")


class AnsibleVarsLoader(yaml.SafeLoader):
    """Reads vars files as Ansible does: `!unsafe` marks a string Ansible must not template (an AWX injector)."""


AnsibleVarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def objects():
    with open(os.path.join(AWX_DIR, "objects.yml")) as handle:
        return yaml.load(handle, Loader=AnsibleVarsLoader)["engine_ops_awx"]  # noqa: S506 (a safe loader)


def role_options(role):
    with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")) as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


def playbook_vars(playbook):
    """Extra vars a playbook reads itself ({{ name ... }}), and the role it runs."""
    with open(os.path.join(REPO, playbook)) as handle:
        text = handle.read()
    plays = yaml.safe_load(text)
    roles = [r["role"].rsplit(".", 1)[-1] for play in plays for r in play.get("roles", [])]
    mapped = {}
    for play in plays:
        for role in play.get("roles", []):
            for name, value in (role.get("vars") or {}).items():
                for used in re.findall(r"\{\{\s*([a-z_][a-z0-9_]*)", str(value)):
                    mapped[used] = name
    for used in re.findall(r"\{\{\s*([a-z_][a-z0-9_]*)", text):
        mapped.setdefault(used, None)
    return roles[0], mapped


def survey_problems(playbook, survey):
    """What in a survey the playbook or its role would not accept; [] when all is well."""
    role, mapped = playbook_vars(playbook)
    options = role_options(role)
    problems = []
    for question in survey:
        var = question["variable"]
        spec = options.get(var) or options.get(mapped.get(var) or "")
        if var not in options and var not in mapped:
            problems.append("%s: '%s' is neither a %s role argument nor read by %s" % (playbook, var, role, playbook))
            continue
        if spec is None:
            continue  # a play keyword (target, serial, batch): no argument spec to compare with
        kind, choices = spec.get("type", "str"), question.get("choices")
        if question["type"] == "multiplechoice":
            allowed = spec.get("choices") or (["true", "false"] if kind == "bool" else None)
            if allowed is not None and not set(choices) <= set(str(c) for c in allowed):
                problems.append("%s: choices %s of '%s' are not among %s" % (playbook, choices, var, allowed))
            if str(question.get("default")) not in choices:
                problems.append("%s: default of '%s' is not one of its choices" % (playbook, var))
        elif question["type"] in ("integer", "float") and kind not in ("int", "float"):
            problems.append("%s: '%s' is a number in the survey but %s in the role" % (playbook, var, kind))
        elif question["type"] in ("text", "textarea") and kind not in ("str", "path", "raw"):
            problems.append("%s: '%s' is text in the survey but %s in the role" % (playbook, var, kind))
    return problems


def test_every_survey_question_maps_to_what_the_playbook_and_its_role_accept():
    awx = objects()
    for template in awx["job_templates"]:
        assert survey_problems(template["playbook"], template["survey"]) == [], template["name"]
    workflow = awx["workflow"]["survey"]
    upgrade = [q for q in workflow if q["variable"] != "rollback_version"]
    assert survey_problems("playbooks/upgrade.yml", upgrade) == []
    assert survey_problems("playbooks/rollback.yml", [q for q in workflow if q["variable"] == "rollback_version"]) == []
    # the check can fail: a variable nobody reads, and choices the role refuses
    bogus = [{"variable": "rollback_modus", "type": "text", "question_name": "x"},
             {"variable": "rollback_data_rollback", "type": "multiplechoice", "choices": ["auto", "sometimes"],
              "default": "auto", "question_name": "y"}]
    assert len(survey_problems("playbooks/rollback.yml", bogus)) == 2


def test_the_apply_playbook_uses_only_options_the_awx_modules_document():
    with open(os.path.join(AWX_DIR, "apply.yml")) as handle:
        plays = yaml.safe_load(handle)
    seen = 0
    for task in plays[0]["tasks"]:
        module = [k for k in task if k.startswith("awx.awx.")][0]
        path = os.path.join(COLLECTIONS, "ansible_collections", "awx", "awx", "plugins", "modules",
                            module.rsplit(".", 1)[-1] + ".py")
        with open(path) as handle:
            source = handle.read()
        documented = yaml.safe_load(source.split("DOCUMENTATION = '''", 1)[1].split("'''", 1)[0])["options"]
        unknown = sorted(set(task[module]) - set(documented))
        assert unknown == [], (module, unknown)
        seen += 1
    assert seen == 6
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    subprocess.run(["ansible-playbook", "--syntax-check", os.path.join(AWX_DIR, "apply.yml")], check=True, env=env,
                   cwd=REPO, capture_output=True)


def module_docs(module):
    path = os.path.join(COLLECTIONS, "ansible_collections", "awx", "awx", "plugins", "modules",
                        module.rsplit(".", 1)[-1] + ".py")
    with open(path) as handle:
        source = handle.read()
    return yaml.safe_load(source.split("DOCUMENTATION = '''", 1)[1].split("'''", 1)[0])["options"]


def argument_spec(documented):
    """An Ansible argument spec from a module's documented options, suboptions included, at every depth."""
    spec = {}
    for name, doc in documented.items():
        entry = {"type": doc.get("type", "str")}
        for key in ("choices", "elements", "aliases", "required"):
            if key in doc:
                entry[key] = doc[key]
        if "suboptions" in doc:
            entry["options"] = argument_spec(doc["suboptions"])
        spec[name] = entry
    return spec


SURVEY_TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")


def survey_spec_problems(where, survey):
    """What AWX's API would refuse in a survey_spec (its SurveySpec validation), [] when all is well."""
    problems = []
    if not isinstance(survey, dict) or not isinstance(survey.get("spec"), list):
        return ["%s: survey_spec needs a 'spec' list" % where]
    for key in ("name", "description"):
        if not isinstance(survey.get(key), str):
            problems.append("%s: survey_spec '%s' must be a string" % (where, key))
    seen = set()
    for question in survey["spec"]:
        var = question.get("variable")
        for key in ("question_name", "variable", "type"):
            if not isinstance(question.get(key), str) or not question.get(key):
                problems.append("%s: question %s lacks '%s'" % (where, var, key))
        if var in seen:
            problems.append("%s: variable '%s' asked twice" % (where, var))
        seen.add(var)
        kind, default = question.get("type"), question.get("default")
        if kind not in SURVEY_TYPES:
            problems.append("%s: '%s' has type %r, not one of %s" % (where, var, kind, SURVEY_TYPES))
        if not isinstance(question.get("required", False), bool):
            problems.append("%s: 'required' of '%s' must be true or false" % (where, var))
        low, high = question.get("min"), question.get("max")
        for bound in (low, high):
            if bound is not None and not isinstance(bound, int):
                problems.append("%s: min/max of '%s' must be integers" % (where, var))
        if kind in ("multiplechoice", "multiselect"):
            choices = question.get("choices")
            choices = choices.split("\n") if isinstance(choices, str) else choices
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                problems.append("%s: choices of '%s' must be a list of strings" % (where, var))
            elif default not in (None, "") and not set(str(default).split("\n")) <= set(choices):
                problems.append("%s: default %r of '%s' is not one of its choices" % (where, default, var))
        elif kind in ("integer", "float") and default not in (None, ""):
            number = int if kind == "integer" else (int, float)
            if not isinstance(default, number) or isinstance(default, bool):
                problems.append("%s: default of '%s' is not a%s" % (where, var, "n integer" if kind == "integer" else " number"))
            elif (low is not None and default < low) or (high is not None and default > high):
                problems.append("%s: default of '%s' is outside [%s, %s]" % (where, var, low, high))
        elif kind in ("text", "textarea", "password") and default not in (None, ""):
            if not isinstance(default, str):
                problems.append("%s: default of '%s' is not a string" % (where, var))
            elif (low is not None and len(default) < low) or (high is not None and len(default) > high):
                problems.append("%s: default of '%s' is not %s..%s characters long" % (where, var, low, high))
    return problems


def rendered_tasks():
    """The tasks of apply.yml with their arguments templated as Ansible would (one per loop item)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    loader = DataLoader()
    variables = dict(loader.load_from_file(os.path.join(AWX_DIR, "objects.yml"), trusted_as_template=True))
    [play] = loader.load_from_file(os.path.join(AWX_DIR, "apply.yml"), trusted_as_template=True)
    templar = Templar(loader=loader, variables=variables)
    variables.update((name, templar.template(value)) for name, value in play["vars"].items())
    for task in play["tasks"]:
        module = [k for k in task if k.startswith("awx.awx.")][0]
        items = Templar(loader=loader, variables=variables).template(task["loop"]) if "loop" in task else [None]
        for item in items:
            scope = dict(variables, item=item) if item is not None else variables
            yield task["name"], module, Templar(loader=loader, variables=scope).template(task[module])


def test_every_awx_object_passes_its_modules_argument_spec_and_awx_survey_rules():
    """Types, choices and nested options (workflow_nodes, related, unified_job_template) of every rendered task,
    checked with Ansible's own argument validator against the awx.awx module's documentation; the surveys against
    what AWX's API accepts."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    checked = surveys = 0
    for name, module, args in rendered_tasks():
        result = ArgumentSpecValidator(argument_spec(module_docs(module))).validate(json.loads(json.dumps(args)))
        assert result.error_messages == [], (name, module, result.error_messages)
        if "survey_spec" in args:
            assert survey_spec_problems(name, args["survey_spec"]) == []
            surveys += 1
        checked += 1
    assert checked == 5 + len(objects()["job_templates"]) and surveys == len(objects()["job_templates"]) + 1
    # the checks can fail: a nested option of the wrong type, a choice the module refuses, a bad survey default
    docs = argument_spec(module_docs("awx.awx.workflow_job_template"))
    for node, words in [({"identifier": "a", "related": {"success_nodes": "rollback"}},
                         "'success_nodes' found in 'workflow_nodes -> related' is of type str"),
                        ({"identifier": "a", "job_type": "deploy"}, "job_type must be one of: run, check, got: deploy"),
                        ({"identifier": "a", "related": {"failure_nodes": [{"identifier": "b", "colour": "red"}]}},
                         "workflow_nodes.related.failure_nodes.colour")]:
        errors = ArgumentSpecValidator(docs).validate({"name": "w", "workflow_nodes": [node]}).error_messages
        assert any(words in e for e in errors), (node, errors)
    bad_survey = {"name": "s", "description": "", "spec": [
        {"variable": "v", "question_name": "q", "type": "multiplechoice", "choices": ["a"], "default": "b"},
        {"variable": "n", "question_name": "q", "type": "integer", "default": 5, "min": 10, "max": 20},
        {"variable": "n", "question_name": "q", "type": "checkbox"}]}
    assert len(survey_spec_problems("bad", bad_survey)) == 4, survey_spec_problems("bad", bad_survey)


JOB_IDS = iter(range(1000, 100000))


def awx_job(tmp_path, playbook, hosts, group, answers, group_vars, limit=None, env=None, cmdline=None):
    """Run a job the way AWX does: private data dir, survey answers and AWX's own variables (awx_job_id, ...) as
    extra vars, ansible-runner, and a home directory of its own that is thrown away when the job ends."""
    pdd = tmp_path / ("job-" + uuid.uuid4().hex[:6])
    (pdd / "project").mkdir(parents=True)
    shutil.copytree(os.path.join(REPO, "playbooks"), str(pdd / "project" / "playbooks"))
    (pdd / "inventory").mkdir()
    inventory = write_inventory(pdd / "inventory", group, hosts, group_vars)
    os.rename(inventory, str(pdd / "inventory" / "hosts.yml"))
    (pdd / "env").mkdir()
    job_id = next(JOB_IDS)
    (pdd / "env" / "extravars").write_text(json.dumps(dict(answers, awx_job_id=job_id, tower_job_id=job_id)))
    home = pdd / "home"
    home.mkdir()
    envvars = dict(env or {}, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", HOME=str(home))
    try:
        result = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/" + playbook, limit=limit,
                                    quiet=True, envvars=envvars, cmdline=cmdline)
    finally:
        shutil.rmtree(str(home))  # AWX's execution environment goes, and the job's home with it
    stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
    artifacts = stats[-1]["event_data"].get("artifact_data") or {} if stats else {}
    return result, artifacts


def fleet(engines, named, prefix, tmp_path, count, version):
    members, hosts = named_engines(engines, named, prefix, count, version)
    for engine in members:
        for n in range(3):
            engine.execute("turn %d" % n, request_id="%s-%d" % (engine.name, n))
    work = tmp_path / "work"
    group_vars = {"engine_snapshot_store": str(work / "store"), "engine_state_dir": str(work / "state"),
                  "engine_ledger_path": str(work / "ledger.jsonl"), "engine_report_dir": str(work / "reports"),
                  "upgrade_watch_seconds": 2, "upgrade_window_seconds": 1, "rollback_diagnostics": False,
                  "drill_history_path": str(work / "history.jsonl")}
    return members, hosts, group_vars, work


def test_a_rollback_job_with_survey_answers_returns_its_artifacts(engines, named, prefix, tmp_path, docker_client):
    members, hosts, group_vars, work = fleet(engines, named, prefix, tmp_path, 2, "2.3.1")
    members = [upgraded_by_hand(engines, engine, work)[0] for engine in members]  # upgrade.yml has its own tests
    bad_window = {}
    for engine in members:  # turns on 2.4.0, after the pre-upgrade snapshot: the rollback must export exactly these
        bad_window[engine.name] = ["%s-bad-%d" % (engine.name, n) for n in range(2)]
        for request_id in bad_window[engine.name]:
            engine.execute("bad window turn", request_id=request_id)
    answers = {"version": "v2.3.1", "reason": "AWX job: bad release", "rollback_data_rollback": "auto",
               "rollback_customer_impact": "false", "rollback_drain_timeout": 30, "rollback_serial": "100%"}
    result, artifacts = awx_job(tmp_path, "rollback.yml", hosts, "engines", answers, group_vars)
    assert result.status == "successful" and result.rc == 0, result.stdout.read()[-3000:]
    rows = artifacts["engine_ops_rollback"]
    assert sorted(rows) == sorted(e.name for e in members)
    for engine in members:
        row = rows[engine.name]
        assert row["result"] == "rolled_back" and row["to"] == "engine:2.3.1" and row["from"] == "engine:2.4.0"
        # 2.4.0 is healthy and its turns succeed: the evidence says hold, and the reason is what overrides it.
        assert row["data_rollback"] in (True, "True") and row["snapshot"] and row["verdict"] == "hold", row
        # Nothing was written between the plan and the swap, so the plan counted exactly what was exported.
        assert row["plan"]["data_rollback_mode"] == "auto"
        assert int(row["plan"]["rows_to_export"]) == int(row["rows_exported"]) >= len(bad_window[engine.name]), row
        with open(os.path.join(row["export_dir"], "episodes.jsonl")) as handle:
            exported = sorted(json.loads(line)["request_id"] for line in handle)
        assert exported == sorted(bad_window[engine.name])
        assert row["reports"]["ledger"] == str(work / "ledger.jsonl")
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    assert artifacts["engine_ops_settings"]["report_dir"] == str(work / "reports")


def test_a_drill_job_with_survey_answers_returns_its_artifacts(engines, named, prefix, tmp_path):
    members, hosts, group_vars, work = fleet(engines, named, prefix, tmp_path, 1, "2.3.1")
    key = hosts[members[0].name].pop("engine_api_key")  # not in the inventory: the Engine API key credential injects it
    answers = {"production_version": "2.3.1", "broken_version": "2.4.0-broken-errors", "drill_rto_budget": 600,
               "drill_seed_turns": 4}
    injectors = objects()["engine_key_credential_type"]["injectors"]["extra_vars"]
    assert injectors == {"engine_api_key": "{{ engine_api_key }}"}
    result, artifacts = awx_job(tmp_path, "drill.yml", hosts, "staging", dict(answers, engine_api_key=key),
                                group_vars)
    assert result.status == "successful", result.stdout.read()[-3000:]
    assert key not in open(result.stdout.name).read()  # the turns carried it; the job output does not
    row = artifacts["engine_ops_drill"][members[0].name]
    assert row["result"] == "passed" and row["verdict"] == "rollback" and row["snapshot"]
    settings = artifacts["engine_ops_drill_settings"]
    assert settings["production_version"] == "2.3.1" and float(settings["rto_budget"]) == 600.0
    assert glob.glob(os.path.join(settings["report_dir"], "drill-%s.json" % settings["id"]))


def test_sliced_snapshot_jobs_are_independent_and_their_results_add_up(engines, named, prefix, tmp_path):
    """AWX job slicing runs the same template on disjoint parts of the inventory: nothing crosses slices."""
    members, hosts, group_vars, work = fleet(engines, named, prefix, tmp_path, 3, "2.3.1")
    names = sorted(hosts)
    merged = {}
    for part in (names[:2], names[2:]):
        result, artifacts = awx_job(tmp_path, "snapshot.yml", hosts, "engines",
                                    {"reason": "sliced", "keep": 3, "pinned": "false"}, group_vars, limit=",".join(part))
        assert result.status == "successful", result.stdout.read()[-3000:]
        assert sorted(artifacts["engine_ops_snapshot"]) == part
        merged.update(artifacts["engine_ops_snapshot"])
    assert sorted(merged) == names and all(row["result"] == "taken" for row in merged.values())
    with open(str(work / "ledger.jsonl")) as handle:
        ledger = [json.loads(line) for line in handle]
    assert sorted(entry["result"]["host"] for entry in ledger if entry["operation"] == "snapshot") == names
    assert len(glob.glob(str(work / "reports" / "snapshot-*.json"))) >= 1


def test_sliced_rollback_jobs_merge_their_summaries_and_ledger(engines, named, prefix, tmp_path, docker_client):
    """Two slices of one rollback job (AWX job slicing: --limit per slice, run at the same time on two execution
    nodes) each roll back only their Engines, and their artifacts, summaries and ledger lines add up to the fleet."""
    members, hosts, group_vars, work = fleet(engines, named, prefix, tmp_path, 4, "2.3.1")
    members = [upgraded_by_hand(engines, engine, work)[0] for engine in members]
    names = sorted(hosts)
    slices = [names[0::2], names[1::2]]
    answers = {"version": "v2.3.1", "reason": "sliced rollback", "rollback_data_rollback": "auto"}
    outcomes = {}

    def run(index):
        outcomes[index] = awx_job(tmp_path, "rollback.yml", hosts, "engines", answers, group_vars,
                                  limit=",".join(slices[index]))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    merged = {}
    for index, part in enumerate(slices):
        result, artifacts = outcomes[index]
        output = result.stdout.read()
        assert result.status == "successful", output[-3000:]
        assert sorted(artifacts["engine_ops_rollback"]) == part  # nothing of the other slice
        summary = output.split("engine_ops rollback summary", 1)[1]
        assert all(name in summary for name in part) and not any(name in summary for name in slices[1 - index])
        merged.update(artifacts["engine_ops_rollback"])
    assert sorted(merged) == names and all(row["result"] == "rolled_back" for row in merged.values())
    for engine in members:
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    reports = sorted(glob.glob(str(work / "reports" / "rollback-*.json")))
    assert len(reports) == 2  # one per slice, even when both finish in the same second
    in_reports = sorted(e["host"] for path in reports for e in json.load(open(path))["engines"])
    assert in_reports == names
    with open(str(work / "ledger.jsonl")) as handle:
        ledger = [json.loads(line) for line in handle]
    rollbacks = [entry for entry in ledger if entry["operation"] == "rollback"]
    assert sorted(entry["result"]["host"] for entry in rollbacks) == names
    assert all(entry["result"]["result"] == "rolled_back" for entry in rollbacks)


def test_ansible_builder_creates_a_build_context(tmp_path):
    assert shutil.which("ansible-builder"), "ansible-builder is missing: it is a dev requirement (scripts/bootstrap.sh)"
    ee = tmp_path / "ee"
    (ee / "meta").mkdir(parents=True)
    for name in ("execution-environment.yml", "bindep.txt", "meta/ee-galaxy.yml", "meta/ee-requirements.txt"):
        shutil.copy(os.path.join(REPO, name), str(ee / name))
    (ee / "build").mkdir()
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(ee / "build"), REPO], check=True,
                   capture_output=True)
    os.rename(glob.glob(str(ee / "build" / "engine_ops-lifecycle-*.tar.gz"))[0], str(ee / "build" / "engine_ops-lifecycle.tar.gz"))
    out = subprocess.run(["ansible-builder", "create", "-f", str(ee / "execution-environment.yml"), "-c", str(ee / "context"),
                          "--output-filename", "Containerfile"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    containerfile = (ee / "context" / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:24.6.1"' in containerfile
    assert "ansible-galaxy collection install --no-deps" in containerfile
    built = ee / "context" / "_build"
    assert (built / "collections" / "engine_ops-lifecycle.tar.gz").is_file()
    assert "google-cloud-compute" in (built / "requirements.txt").read_text()
    assert "community.docker" in (built / "requirements.yml").read_text()
    assert "sqlite3 [platform:dpkg]" in (built / "bindep.txt").read_text()


def test_the_workflow_rolls_back_to_its_own_target_after_a_failed_upgrade(
        engines, named, prefix, tmp_path, docker_client):
    """The workflow's nodes get its survey's extra vars (plus each node's extra data), as AWX passes them."""
    members, hosts, group_vars, work = fleet(engines, named, prefix, tmp_path, 1, "2.3.1")
    # The release is healthy but its evals are red: the upgrade fails after the switch and, with the workflow's
    # upgrade_auto_rollback=false, leaves the Engine on it for the approval node. (A release whose /health fails
    # would be reverted by the switch itself, and the rollback node would find nothing to do.)
    group_vars["upgrade_eval_command"] = "false"
    engine = members[0]
    workflow = objects()["workflow"]
    survey = {"version": "2.4.0-broken-errors", "rollback_version": "2.3.1", "reason": "workflow test"}
    upgrade, upgrade_artifacts = awx_job(tmp_path, "upgrade.yml", hosts, "engines",
                                         dict(survey, **workflow["upgrade_extra_data"]), group_vars)
    assert upgrade.status == "failed"  # -> the approval node, then:
    row = upgrade_artifacts["engine_ops_upgrade"][engine.name]
    assert row["result"] == "failed" and row["rolled_back"] in (False, "False") and row["snapshot"], row
    broken = docker_client.images.get("engine:2.4.0-broken-errors").id
    assert docker_client.containers.get(engine.name).image.id == broken  # left for the approval node
    rollback, artifacts = awx_job(tmp_path, "rollback.yml", hosts, "engines",
                                  dict(survey, **workflow["rollback_extra_data"]), group_vars)
    assert rollback.status == "successful", rollback.stdout.read()[-3000:]
    result = artifacts["engine_ops_rollback"][engine.name]
    assert result["to"] == "engine:2.3.1" and result["from"] == "engine:2.4.0-broken-errors", result
    assert result["result"] == "rolled_back" and result["data_rollback"] in (True, "True"), result
    assert result["snapshot"] == row["snapshot"]  # the upgrade's pinned snapshot
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    assert engine.health()[1]["status"] == "ok"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted("%s-%d" % (engine.name, n) for n in range(3))


def job_vars():
    """The extra vars the job templates carry (extensions/awx/apply.yml), whatever the survey answers."""
    with open(os.path.join(AWX_DIR, "apply.yml")) as handle:
        tasks = yaml.safe_load(handle)[0]["tasks"]
    [template] = [t for t in tasks if "awx.awx.job_template" in t]
    return template["awx.awx.job_template"]["extra_vars"]


@pytest.fixture
def lasting_dir():
    path = pathlib.Path(os.environ.get("ENGINE_OPS_WORK") or os.path.join(REPO, ".work")) / ("awx-" + uuid.uuid4().hex[:8])
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(str(path))


def test_a_rolled_back_version_stays_refused_in_the_next_job_although_each_job_has_a_fresh_home(
        engines, named, prefix, tmp_path, docker_client, lasting_dir):
    carried = job_vars()
    assert carried == {"engine_controller_state_dir": "{{ __awx.lasting_state_dir }}",
                       "engine_cloud_credentials_from_env": True}
    members, hosts, group_vars, work = fleet(engines, named, prefix, tmp_path, 1, "2.3.1")
    [engine] = members
    for key in ("engine_ledger_path", "engine_report_dir", "drill_history_path"):
        del group_vars[key]  # the ledger, reports and history go where the job templates say
    # the volume mounted into the execution environment (objects.yml): not under /tmp, which does not last either
    lasting = lasting_dir / "state"
    template = dict(carried, engine_controller_state_dir=str(lasting))
    secret = "eo-secret-" + uuid.uuid4().hex
    cloud = {"AWS_ACCESS_KEY_ID": "AKIAENGINEOPSTEST", "AWS_SECRET_ACCESS_KEY": secret}  # as AWX's AWS credential

    result, dummy = awx_job(tmp_path, "upgrade.yml", hosts, "engines", dict(template, version="2.4.0"), group_vars,
                            env=cloud)
    out = result.stdout.read()
    assert result.status == "successful", out[-3000:]
    assert secret not in out and all(secret not in json.dumps(e) for e in result.events)
    snapshots = [e["event_data"]["res"] for e in result.events if e["event"] == "runner_on_ok"
                 and e["event_data"].get("task_action", "").endswith("brain_snapshot")]
    hidden = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"  # handed to the module on the host as options, both no_log
    assert snapshots and all(r["invocation"]["module_args"]["aws_access_key"] == hidden
                             and r["invocation"]["module_args"]["aws_secret_key"] == hidden for r in snapshots), snapshots
    upgraded = docker_client.containers.get(engine.name)

    blocked = tmp_path / "a-file"  # bad input: a state directory that can't be made
    blocked.write_text("")
    result, dummy = awx_job(tmp_path, "rollback.yml", hosts, "engines", dict(
        template, engine_controller_state_dir=str(blocked), version="v2.3.1", reason="AWX job: bad release"), group_vars)
    out = result.stdout.read()
    assert result.status == "failed" and "can't be written" in out and "nothing was changed" in out, out[-3000:]
    now = docker_client.containers.get(engine.name)
    assert (now.id, now.image.id, now.attrs["State"]["StartedAt"]) == (
        upgraded.id, upgraded.image.id, upgraded.attrs["State"]["StartedAt"])

    result, dummy = awx_job(tmp_path, "rollback.yml", hosts, "engines", dict(
        template, version="v2.3.1", reason="AWX job: bad release"), group_vars)
    out = result.stdout.read()
    assert result.status == "successful", out[-3000:]
    if str(lasting).startswith(("/tmp/", "/var/tmp/")):  # a checkout under /tmp: lasting for this test, not for the check
        assert "it is under /tmp" in out and "the job's home directory" not in out, out[-3000:]
    else:
        assert "(outlives this run)" in out and "WILL BE LOST" not in out, out[-3000:]
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id

    result, dummy = awx_job(tmp_path, "upgrade.yml", hosts, "engines", dict(template, version="2.4.0"), group_vars)
    out = result.stdout.read()
    assert result.status == "failed" and "was rolled back 1 time(s)" in out and "root_cause" in out, out[-3000:]
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id

    # without the job templates' setting the ledger would live in the job's home: the plan says so, loudly, and the
    # guard has nothing to go on (check mode: nothing is changed)
    result, dummy = awx_job(tmp_path, "upgrade.yml", hosts, "engines", {"version": "2.4.0"}, group_vars,
                            cmdline="--check")
    out = result.stdout.read()
    assert result.status == "successful", out[-3000:]
    assert "LASTING STATE WILL BE LOST" in out and "the job's home directory" in out and "WILL BE LOST after" in out
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    assert sorted(os.listdir(str(lasting))) == ["ledger.jsonl", "reports"]
