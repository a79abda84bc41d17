-- Knowledge, social graph, MCP connections and ingestion.
CREATE TABLE knowledge_store (
    id {pk},
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL
);
@sqlite CREATE VIRTUAL TABLE knowledge_store_vec USING vec0(
    knowledge_id INTEGER PRIMARY KEY,
    embedding float[1536],
    +created_at TEXT
);
@postgres CREATE TABLE knowledge_store_vec (
    knowledge_id BIGINT PRIMARY KEY,
    embedding REAL[] NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE social_graph_nodes (
    id {pk},
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE social_graph_edges (
    id {pk},
    source_id BIGINT NOT NULL,
    target_id BIGINT NOT NULL,
    relation TEXT NOT NULL,
    created_at TEXT NOT NULL
);
@sqlite CREATE VIRTUAL TABLE social_graph_edges_vec USING vec0(
    edge_id INTEGER PRIMARY KEY,
    embedding float[1536],
    +created_at TEXT
);
@postgres CREATE TABLE social_graph_edges_vec (
    edge_id BIGINT PRIMARY KEY,
    embedding REAL[] NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE channel_state_snapshots (
    id {pk},
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE connections (
    id {pk},
    name TEXT NOT NULL UNIQUE,
    server_url TEXT NOT NULL,
    encrypted_credentials {blob} NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE server_registry (
    id {pk},
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE action_registry (
    id {pk},
    name TEXT NOT NULL,
    server_name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE ingestion_chunks (
    id {pk},
    source TEXT NOT NULL,
    chunk TEXT NOT NULL,
    created_at TEXT NOT NULL
);
