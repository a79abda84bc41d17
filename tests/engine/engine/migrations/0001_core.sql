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
CREATE TABLE episodes_vec (
    id {pk},
    episode_id BIGINT NOT NULL,
    embedding {blob} NOT NULL,
    created_at TEXT NOT NULL
);
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
