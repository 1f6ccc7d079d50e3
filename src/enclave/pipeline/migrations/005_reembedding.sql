-- Vectors from the next embedding model, written in committed batches while search goes on
-- with the old ones; `enclave reindex` swaps them in with one transaction (and resumes here).
create table embeddings_next (
    chunk_id bigint primary key references chunks(id) on delete cascade,
    model text not null,
    embedding vector not null
);
