-- Knowledge, social graph, MCP connections and ingestion.
CREATE TABLE knowledge_store (
    id {pk},
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE knowledge_store_vec (
    id {pk},
    knowledge_id BIGINT NOT NULL,
    embedding {blob} NOT NULL,
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
CREATE TABLE social_graph_edges_vec (
    id {pk},
    edge_id BIGINT NOT NULL,
    embedding {blob} NOT NULL,
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
