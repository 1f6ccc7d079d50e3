-- A document's class from a fine-tuned classifier (`enclave ingest --classifier`):
-- {"label": ..., "score": ..., "model": ...}; null where none was applied.
alter table documents add column classification jsonb;
