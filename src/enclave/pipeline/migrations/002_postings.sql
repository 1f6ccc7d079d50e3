-- BM25 postings: one row per (chunk, lexeme) with its term frequency, so keyword search reads
-- only the query terms' postings instead of unnesting every matching chunk's tsvector.
create table postings (
    lexeme text not null,
    chunk_id bigint not null,
    document_id bigint not null references documents(id) on delete cascade,
    tf int not null,
    term_count int not null
);
create index postings_lexeme on postings (lexeme) include (chunk_id, document_id, tf, term_count);
create index postings_document on postings (document_id);

-- Keyword search reads postings now; the GIN index on tsvectors would only slow ingest.
drop index chunks_tsv;

-- Per-document totals: BM25's N and average length over the permitted documents.
alter table documents add column chunk_count int not null default 0;
alter table documents add column term_total bigint not null default 0;

insert into postings (lexeme, chunk_id, document_id, tf, term_count)
select u.lexeme, c.id, c.document_id, coalesce(array_length(u.positions, 1), 1), c.term_count
from chunks c cross join lateral unnest(c.tsv) u;

update documents d set chunk_count = s.n, term_total = s.total
from (select document_id, count(*) as n, sum(term_count) as total from chunks group by document_id) s
where s.document_id = d.id;

grant select on postings to enclave_reader;
alter table postings enable row level security;
create policy postings_readable on postings for select to enclave_reader using (
    document_id in (select a.document_id from document_acl a
              where a.principal_id = any ((select enclave_principals())::bigint[]))
);
