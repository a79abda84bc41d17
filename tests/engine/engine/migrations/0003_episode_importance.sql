-- 2.4.0: episodes gain an importance score and consolidations move to their own table.
-- Forward-only: 2.3.x neither writes `importance` nor knows `memory_consolidations`.
ALTER TABLE episodes ADD COLUMN importance REAL NOT NULL DEFAULT 0.5;
CREATE TABLE memory_consolidations (
    id {pk},
    episode_id BIGINT NOT NULL,
    summary TEXT NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO memory_consolidations (episode_id, summary, created_at)
    SELECT id, summary, created_at FROM episodes;
