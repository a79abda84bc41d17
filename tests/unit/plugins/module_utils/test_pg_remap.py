"""pg_restore's script moved from schema public into the staged schema: names only, never data or text."""

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.pg_remap import (
    SchemaRemap, filtered_toc, toc_sections)

T = '"engine_ops_restore_1".'


def remap(*lines, target="engine_ops_restore_1"):
    mover = SchemaRemap(target)
    return "".join(mover.line(line.encode()).decode() for line in lines)


@pytest.mark.parametrize("line,expected", [
    ("CREATE TABLE public.episodes (\n", "CREATE TABLE %sepisodes (\n" % T),
    ("ALTER SEQUENCE public.episodes_id_seq OWNED BY public.episodes.id;\n",
     "ALTER SEQUENCE %sepisodes_id_seq OWNED BY %sepisodes.id;\n" % (T, T)),
    ("ALTER TABLE ONLY public.e ALTER COLUMN id SET DEFAULT nextval('public.e_id_seq'::regclass);\n",
     "ALTER TABLE ONLY %se ALTER COLUMN id SET DEFAULT nextval('%se_id_seq'::regclass);\n" % (T, T)),
    ("SELECT pg_catalog.setval('public.episodes_id_seq', 12, true);\n",
     "SELECT pg_catalog.setval('%sepisodes_id_seq', 12, true);\n" % T),
    ("SELECT pg_catalog.setval('public.\"Odd\"\"Seq\"', 1, false);\n",
     "SELECT pg_catalog.setval('%s\"Odd\"\"Seq\"', 1, false);\n" % T),
    ('CREATE INDEX i ON "public".e USING btree (created_at);\n', "CREATE INDEX i ON %se USING btree (created_at);\n" % T),
])
def test_names_in_schema_public_move_to_the_staged_schema(line, expected):
    assert remap(line) == expected


@pytest.mark.parametrize("line", [
    "    summary text DEFAULT 'public.x'::text,\n",  # a text default that looks like a name stays text
    "COMMENT ON COLUMN x IS 'see public.episodes';\n",
    "SELECT $$ public.a $$, $body$ public.b $body$;\n",
    "SELECT E'it\\'s public.b';\n",
    "-- public.c in a comment\n",
    "SELECT 1 /* public.z */;\n",
    "SELECT my_public.x, \"my public\".y, republic.z;\n",
    "\\restrict abcdef\n",
])
def test_literals_comments_bodies_and_other_names_are_left_alone(line):
    assert remap(line) == line


def test_copy_data_passes_through_untouched_until_its_end_marker():
    script = ["COPY public.episodes (id, summary) FROM stdin;\n", "1\tCREATE TABLE public.x\n",
              "2\tit's public.y 'quoted\n", "\\.\n", "SELECT pg_catalog.setval('public.s', 2, true);\n"]
    assert remap(*script).splitlines(True) == [
        "COPY %sepisodes (id, summary) FROM stdin;\n" % T, script[1], script[2], script[3],
        "SELECT pg_catalog.setval('%ss', 2, true);\n" % T]


def test_a_literal_over_several_lines_is_not_rewritten_and_the_state_carries_on():
    script = ["COMMENT ON TABLE public.t IS 'first line\n", "public.x ''q'' still text\n", "';\n",
              "CREATE TABLE public.u ();\n"]
    assert remap(*script).splitlines(True) == [
        "COMMENT ON TABLE %st IS 'first line\n" % T, script[1], script[2], "CREATE TABLE %su ();\n" % T]


def test_a_target_with_a_quote_is_quoted():
    assert remap("CREATE TABLE public.t ();\n", target='we"ird') == 'CREATE TABLE "we""ird".t ();\n'


LISTING = """;
; Archive created at 2026-12-07 09:29:21 UTC
;
215; 1259 65539 TABLE public episodes engine
214; 1259 65538 SEQUENCE public episodes_id_seq engine
3352; 0 0 SEQUENCE OWNED BY public episodes_id_seq engine
3197; 2604 65542 DEFAULT public episodes id engine
6; 2615 2200 SCHEMA - public pg_database_owner
3360; 0 0 COMMENT - SCHEMA public pg_database_owner
2; 3079 16385 EXTENSION - vector
3345; 0 65539 TABLE DATA public episodes engine
3346; 0 65540 TABLE DATA public knowledge_store engine
3353; 0 0 SEQUENCE SET public episodes_id_seq engine
3201; 2606 65547 CONSTRAINT public episodes episodes_pkey engine
3361; 0 0 ACL - SCHEMA public pg_database_owner
"""


def test_the_toc_drops_schema_and_extension_entries_and_splits_around_the_data():
    kept, skipped = filtered_toc(LISTING)
    assert skipped == ["SCHEMA - public pg_database_owner", "COMMENT - SCHEMA public pg_database_owner",
                       "EXTENSION - vector", "ACL - SCHEMA public pg_database_owner"]
    before, data, after = toc_sections(kept)
    assert [line.split(";")[0] for line in before] == ["215", "214", "3352", "3197"]
    assert [line.split(";")[0] for line in data] == ["3345", "3346"]
    assert [line.split(";")[0] for line in after] == ["3353", "3201"]
