"""Generate a realistic brain: every table filled, rows spread over the past days.

Runs inside the Engine image (`python3 -m engine seed ...`) against the same SQLite path or
DATABASE_URL the Engine uses, applying migrations first exactly as the Engine does at start-up.
"""

import base64
import json
import random
from datetime import datetime, timedelta, timezone

from .brain import EMBEDDING_DIM, brain_from_config, float32_bytes, load_migrations
from .jsonlog import utcnow_iso


def _stamps(rng, count, days, now):
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()
    return sorted(utcnow_iso(start + timedelta(seconds=rng.random() * span)) for dummy in range(count))


def seed_rows(episodes, days, chunk_bytes=1024, seed=1, now=None):
    """Yield (table, columns, rows) for a brain with `episodes` turns spread over `days` days."""
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    stamps = _stamps(rng, episodes, days, now)
    words = ("memory", "agent", "tool", "plan", "user", "context", "recall", "channel", "graph", "signal")

    def embedding():  # 1536 float32 values: 6 KiB, most of a real brain's bytes
        return float32_bytes(rng.randbytes(EMBEDDING_DIM * 3))

    def text(n):
        return " ".join(rng.choice(words) for dummy in range(n))

    convs = ["c%05d" % (i // 4) for i in range(episodes)]
    reqs = ["seed-%06d" % i for i in range(episodes)]
    yield "episodes", ("request_id", "conversation_id", "summary", "outcome", "created_at"), [
        (reqs[i], convs[i], text(12), "completed", stamps[i]) for i in range(episodes)]
    yield "episodes_vec", ("episode_id", "embedding", "created_at"), [
        (i + 1, embedding(), stamps[i]) for i in range(episodes)]
    yield "conversations", ("conversation_id", "request_id", "role", "content", "created_at"), [
        (convs[i], reqs[i], role, text(30), stamps[i]) for i in range(episodes) for role in ("user", "assistant")]
    yield "learning_signals", ("request_id", "conversation_id", "signal", "score", "created_at"), [
        (reqs[i], convs[i], rng.choice(("thumbs_up", "thumbs_down", "implicit")), rng.random(), stamps[i])
        for i in range(episodes)]
    yield "working_memory_log", ("request_id", "content", "created_at"), [
        (reqs[i], text(20), stamps[i]) for i in range(episodes)]
    yield "trajectories", ("request_id", "steps", "created_at"), [
        (reqs[i], json.dumps([{"step": text(2)} for dummy in range(3)]), stamps[i]) for i in range(episodes)]
    yield "observability_events", ("request_id", "kind", "payload", "created_at"), [
        (reqs[i], "turn.completed", json.dumps({"duration_ms": rng.randint(500, 60000)}), stamps[i])
        for i in range(episodes)]
    facts = max(1, episodes // 2)
    fact_stamps = _stamps(rng, facts, days, now)
    yield "knowledge_store", ("key", "value", "source", "created_at"), [
        ("fact-%d" % i, text(15), "conversation", fact_stamps[i]) for i in range(facts)]
    yield "knowledge_store_vec", ("knowledge_id", "embedding", "created_at"), [
        (i + 1, embedding(), fact_stamps[i]) for i in range(facts)]
    people = max(2, episodes // 10)
    yield "social_graph_nodes", ("name", "kind", "created_at"), [
        ("person-%d" % i, "person", stamps[min(i, episodes - 1)]) for i in range(people)]
    edges = max(1, people - 1)
    yield "social_graph_edges", ("source_id", "target_id", "relation", "created_at"), [
        (i + 1, i + 2, "knows", stamps[min(i, episodes - 1)]) for i in range(edges)]
    yield "social_graph_edges_vec", ("edge_id", "embedding", "created_at"), [
        (i + 1, embedding(), stamps[min(i, episodes - 1)]) for i in range(edges)]
    yield "channel_state_snapshots", ("channel", "state", "created_at"), [
        ("slack-%d" % (i % 3), json.dumps({"cursor": i}), stamps[i]) for i in range(0, episodes, 5)]
    yield "server_registry", ("name", "url", "created_at"), [
        ("mcp-files", "http://127.0.0.1:9/files", stamps[0]), ("mcp-search", "http://127.0.0.1:9/search", stamps[0])]
    yield "action_registry", ("name", "server_name", "created_at"), [
        ("read_file", "mcp-files", stamps[0]), ("search", "mcp-search", stamps[0])]
    chunk_stamps = _stamps(rng, episodes * 2, days, now)
    yield "ingestion_chunks", ("source", "chunk", "created_at"), [
        ("doc-%d" % (i // 8), base64.b64encode(rng.randbytes(chunk_bytes * 3 // 4)).decode(), chunk_stamps[i])
        for i in range(episodes * 2)]


def seed(config, episodes, days, chunk_bytes=1024, seed_value=1, log=None):
    """Fill a brand-new brain; a brain that an Engine already initialised is left untouched."""
    brain = brain_from_config(config)
    applied = brain.applied_readonly()
    if applied:
        if log:
            log.info("brain already initialised; not seeded", migrations=applied)
        return {}
    brain.open(load_migrations(), utcnow_iso())
    counts = {}
    try:
        for table, columns, rows in seed_rows(episodes, days, chunk_bytes, seed_value):
            brain.bulk_insert(table, columns, rows)
            counts[table] = len(rows)
    finally:
        brain.close()
    if log:
        log.info("brain seeded", rows=counts)
    return counts
