-- Core memory of the agent: what happened, what was said, what was learned.
CREATE TABLE episodes (
    id {pk},
    request_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX episodes_created_at ON episodes (created_at);
-- Embeddings: a sqlite-vec vec0 table in SQLite (1536-dim float32), REAL[] in PostgreSQL.
@sqlite CREATE VIRTUAL TABLE episodes_vec USING vec0(
    episode_id INTEGER PRIMARY KEY,
    embedding float[1536],
    +created_at TEXT
);
@postgres CREATE TABLE episodes_vec (
    episode_id BIGINT PRIMARY KEY,
    embedding REAL[] NOT NULL,
    created_at TEXT NOT NULL
);
-- Full-text search over episodes, kept in step by the Engine (SQLite only).
@sqlite CREATE VIRTUAL TABLE episodes_fts USING fts5(summary, outcome, created_at UNINDEXED);
CREATE TABLE conversations (
    id {pk},
    conversation_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX conversations_conversation_id ON conversations (conversation_id);
CREATE TABLE learning_signals (
    id {pk},
    request_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    signal TEXT NOT NULL,
    score REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE working_memory_log (
    id {pk},
    request_id TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE trajectories (
    id {pk},
    request_id TEXT NOT NULL,
    steps TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE observability_events (
    id {pk},
    request_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
