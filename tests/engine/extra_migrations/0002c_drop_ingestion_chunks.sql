-- 2.3.4: drops a table 2.3.x still reads. An image-only rollback cannot bring the data back; only the
-- pre-upgrade snapshot can.
DROP TABLE ingestion_chunks;
