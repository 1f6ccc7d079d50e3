-- The sign of each dimension of every chunk's vector (pgvector's binary_quantize), in a narrow
-- table of its own. A user who may read a few thousand to ~15,000 chunks is searched by
-- scanning their signs (Hamming distance, ~70 bytes a row) and re-scoring the best candidates
-- by their full vectors. On 101k real chunks, 2 cores (benchmarks/RESULTS.md, p50): 5 %
-- readable 11 ms at recall@10 0.991, where HNSW, whose iterative scan under such a filter
-- reads far, took 34 ms and an exact scan of the chunk rows (2.4 kB each) 16 ms; 15 % readable
-- 18 ms at 0.993, HNSW 18 ms at 0.980, exact 76 ms. varbit: the length follows the model.
create table chunk_signs (
    chunk_id bigint primary key references chunks(id) on delete cascade,
    document_id bigint not null,
    signs varbit not null
);
create index chunk_signs_document on chunk_signs (document_id);

insert into chunk_signs (chunk_id, document_id, signs)
select id, document_id, binary_quantize(embedding) from chunks order by document_id, id;

grant select on chunk_signs to enclave_reader;
alter table chunk_signs enable row level security;
create policy chunk_signs_readable on chunk_signs for select to enclave_reader using (
    document_id in (select a.document_id from document_acl a
              where a.principal_id = any ((select enclave_principals())::bigint[]))
);
