import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.postgres import PostgresBackend

PARAMS = {"pg_host": "127.0.0.1", "pg_port": 5432, "pg_user": "u", "pg_password": "p", "pg_database": None,
          "pg_dsn": None, "pg_jobs": 2}


def test_dsn_fills_the_connection_and_wins_over_the_container_url():
    backend = PostgresBackend.from_params(dict(PARAMS, pg_dsn="postgresql://eng:s3@db.local:6543/brain"),
                                          container_url="postgresql://x:y@127.0.0.1/other")
    assert (backend.host, backend.port, backend.user, backend.database) == ("db.local", 6543, "eng", "brain")
    assert "s3" not in repr(backend.location())


def test_container_database_url_is_used_when_nothing_else_is_given():
    backend = PostgresBackend.from_params(PARAMS, container_url="postgresql://eng:pw@127.0.0.1:5499/brain_1")
    assert (backend.port, backend.database) == (5499, "brain_1")


def test_a_database_is_required():
    with pytest.raises(BrainError, match="name the brain database"):
        PostgresBackend.from_params(PARAMS)


@pytest.mark.parametrize("database", ["brain", "a" * 63, "support_agent_production_brain_database_x"])
def test_staged_and_aside_names_fit_postgres_identifiers(database):
    backend = PostgresBackend("h", 5432, "u", "p", database, strategy="database")
    staged = backend.staged_path("20261128T183617.118797Z")
    aside = backend.aside_path("20261128T183621Z")
    assert len(staged) <= 63 and len(aside) <= 63 and staged != aside
    assert staged.endswith("__restore_20261128183617") and aside.endswith("__pre_restore_20261128183621")


def test_the_schema_strategy_names_schemas_of_the_brain_database_itself():
    backend = PostgresBackend("h", 5432, "u", "p", "brain", strategy="schema")
    assert backend.staged_path("20261128T183617.118797Z") == "engine_ops_restore_20261128183617"
    assert backend.aside_path("20261128T183621Z") == "engine_ops_pre_restore_20261128183621"
    assert backend.live_name() == "public"


def test_an_unknown_strategy_is_refused():
    with pytest.raises(BrainError, match="pg_restore_strategy must be one of auto, schema, database"):
        PostgresBackend("h", 5432, "u", "p", "brain", strategy="tablespace")
