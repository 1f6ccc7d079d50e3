-- Keep vectors inside the table's rows. pgvector's types default to out-of-line storage, and a
-- chunk row (text + tsvector + 1.5 kB vector) passes PostgreSQL's ~2 kB limit, so most vectors
-- went to the TOAST table: an exact scan then made one TOAST lookup per chunk. With "main" the
-- text and tsvector are compressed or moved out first (benchmarks/RESULTS.md, real corpus).
alter table chunks alter column embedding set storage main;
alter table embeddings_next alter column embedding set storage main;
-- Rewrite the rows stored so far under the new storage, in document order: the access filter
-- selects whole documents, so a reader's chunks then lie together.
cluster chunks using chunks_document;
