-- Core schema: principals, documents with access lists, chunks with text and vectors.
create extension if not exists vector;

create table principals (
    id bigserial primary key,
    kind text not null check (kind in ('user', 'group')),
    name text not null check (name <> ''),
    created_at timestamptz not null default now(),
    unique (kind, name)
);

create table memberships (
    user_id bigint not null references principals(id) on delete cascade,
    group_id bigint not null references principals(id) on delete cascade,
    primary key (user_id, group_id)
);
create index memberships_group on memberships(group_id);

create table documents (
    id bigserial primary key,
    source text not null unique,
    title text not null,
    mime text not null,
    content_hash text not null,
    body text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table document_acl (
    document_id bigint not null references documents(id) on delete cascade,
    principal_id bigint not null references principals(id) on delete cascade,
    primary key (document_id, principal_id)
);
create index document_acl_principal on document_acl(principal_id, document_id);

create table chunks (
    id bigserial primary key,
    document_id bigint not null references documents(id) on delete cascade,
    ordinal int not null,
    text text not null,
    char_start int not null,
    char_end int not null,
    page int,
    heading_path text[] not null default '{}',
    token_count int not null,
    lang regconfig not null,
    tsv tsvector not null,
    -- Total term occurrences in tsv: the document length in BM25.
    term_count int not null,
    embedding vector not null,
    unique (document_id, ordinal)
);
create index chunks_tsv on chunks using gin(tsv);
create index chunks_document on chunks(document_id);

-- Which embedding model built the vectors; a different model needs a re-index.
create table index_meta (
    key text primary key,
    value text not null
);

-- Row-level security: the second, independent enforcement of access lists. Reads run as
-- enclave_reader with the setting enclave.user naming the requesting user.
-- On an external server an administrator may have created the role and granted it to
-- Enclave's (non-superuser) role already; granting again would need the admin option.
do $$
begin
    if not exists (select from pg_roles where rolname = 'enclave_reader') then
        create role enclave_reader nologin;
    end if;
    if not pg_has_role(current_user, 'enclave_reader', 'member') then
        grant enclave_reader to current_user;
    end if;
end
$$;
grant usage on schema public to enclave_reader;
grant select on principals, memberships, documents, document_acl, chunks, index_meta
    to enclave_reader;

create function enclave_principals() returns bigint[]
language sql stable as $$
    select coalesce(array_agg(id), '{}') from (
        select p.id from principals p
        where p.kind = 'user' and p.name = current_setting('enclave.user', true)
        union
        select m.group_id from memberships m join principals p on p.id = m.user_id
        where p.kind = 'user' and p.name = current_setting('enclave.user', true)
    ) mine
$$;

-- The policies' subquery does not depend on the row: PostgreSQL runs it once per query and
-- probes a hash of permitted document ids (a correlated EXISTS cost 0.02 ms per row).
alter table documents enable row level security;
alter table chunks enable row level security;
create policy documents_readable on documents for select to enclave_reader using (
    id in (select a.document_id from document_acl a
              where a.principal_id = any ((select enclave_principals())::bigint[]))
);
create policy chunks_readable on chunks for select to enclave_reader using (
    document_id in (select a.document_id from document_acl a
              where a.principal_id = any ((select enclave_principals())::bigint[]))
);
