import json

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.reimport import ReimportError, import_rows, plan


class Brain:
    """The live brain as brain_import's plan reads it: rows by key, columns per table."""

    def __init__(self, tables):
        self.tables = tables

    def rows_by_key(self, table, rows):
        if table not in self.tables:
            return None
        key, columns, present = self.tables[table]
        return {"key": key, "columns": columns, "present": dict((r[key], r) for r in present)}


def export(tmp_path, tables, updated=None, deleted=None):
    (tmp_path / "summary.json").write_text("{}")
    for name, rows in tables.items():
        (tmp_path / ("%s.jsonl" % name)).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for suffix, changes in (("updated", updated or {}), ("deleted", deleted or {})):
        for name, rows in changes.items():
            (tmp_path / ("%s.%s.jsonl" % (name, suffix))).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(tmp_path)


def test_rows_are_sorted_into_importable_present_and_conflicts(tmp_path):
    directory = export(tmp_path, {"episodes": [{"id": 1, "s": "a"}, {"id": 2, "s": "b"}, {"id": 3, "s": "c"}]},
                       updated={"episodes": [{"key": {"id": 9}}]}, deleted={"episodes": [{"key": {"id": 8}}]})
    brain = Brain({"episodes": ("id", ["id", "s"], [{"id": 2, "s": "b"}, {"id": 3, "s": "other"}])})
    report, send = plan(brain, directory, ["episodes"])
    entry = report["episodes"]
    assert (entry["importable"], entry["already_present"], entry["conflicts"]) == (1, 1, 1)
    assert entry["conflicting_keys"] == [{"id": 3}] and (entry["changed_in_place"], entry["deleted"]) == (1, 1)
    assert send == {"episodes": [{"id": 1, "s": "a"}]}


@pytest.mark.parametrize("tables, ignore, message", [
    (["nope"], [], "has no rows of nope"),
    (["episodes"], [], "has no column importance; name each in ignore_columns (as episodes.importance)"),
])
def test_what_cannot_be_imported_is_refused_by_name(tmp_path, tables, ignore, message):
    directory = export(tmp_path, {"episodes": [{"id": 1, "importance": 0.5}]})
    with pytest.raises(ReimportError, match=message.replace("(", "\\(").replace(")", "\\)")):
        plan(Brain({"episodes": ("id", ["id"], [])}), directory, tables, ignore)


def test_ignored_columns_are_left_out_of_the_rows_sent(tmp_path):
    directory = export(tmp_path, {"episodes": [{"id": 1, "importance": 0.5}]})
    report, send = plan(Brain({"episodes": ("id", ["id"], [])}), directory, ["episodes"], ["episodes.importance"])
    assert send == {"episodes": [{"id": 1}]} and report["episodes"]["columns_not_in_brain"] == ["importance"]


@pytest.mark.parametrize("status, answer, expected", [
    (200, {"imported": {"episodes": 1}}, {"episodes": 1}),
    (409, {"conflicts": [{"table": "episodes", "key": {"id": 1}}]}, "1 rows already present"),
    (401, {}, "refused engine_api_key"),
    (0, {"error": "connection refused"}, "answered HTTP 0"),
])
def test_the_engines_answer_is_reported(status, answer, expected):
    sent = []

    def post(body):
        sent.append(body)
        return status, answer

    if isinstance(expected, dict):
        assert import_rows(post, {"episodes": [{"id": 1}], "empty": []}) == expected
        assert sent == [{"tables": {"episodes": [{"id": 1}]}, "on_conflict": "fail"}]
    else:
        with pytest.raises(ReimportError, match=expected):
            import_rows(post, {"episodes": [{"id": 1}]})


def test_nothing_chosen_sends_nothing():
    assert import_rows(lambda body: pytest.fail("sent"), {"episodes": []}) == {}
