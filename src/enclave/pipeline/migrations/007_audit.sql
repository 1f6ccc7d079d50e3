-- The audit trail: who did what through which interface, and which passages they were shown.
-- Each entry is chained to the one before by a hash (audit.py), so editing, removing or
-- reordering an entry is found by `enclave audit verify`.
create table audit_log (
    id bigint primary key,
    at timestamptz not null,
    -- People appear only as random keys (audit_people holds the names): erasing a person
    -- deletes their name there and leaves every entry, and so the chain, as it was; the key
    -- cannot be derived from the name again (a later account of that name gets a new key).
    actor_key text,
    interface text not null check (interface in ('cli', 'web', 'api', 'openai', 'server')),
    action text not null,
    subject_key text,
    query text,
    chunk_ids bigint[] not null default '{}',
    document_ids bigint[] not null default '{}',
    abstained boolean,
    answer_hash text,
    detail jsonb not null default '{}',
    prev_hash text not null,
    hash text not null
);
create index audit_log_at on audit_log (at);
create index audit_log_actor on audit_log (actor_key, at);
create index audit_log_subject on audit_log (subject_key, at);
create index audit_log_documents on audit_log using gin (document_ids);

create table audit_people (
    key text primary key,
    name text not null unique,
    -- HMAC of key and name under audit_secret: a swapped name fails `audit verify`.
    mac text not null
);

-- The secret of those MACs, made once per database.
create table audit_secret (
    id int primary key check (id = 1),
    key text not null
);
insert into audit_secret values (1, encode(sha256(convert_to(
    gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex'));

-- Where the chain starts once retention has deleted its oldest entries.
create table audit_anchor (
    id int primary key check (id = 1),
    last_id bigint not null,
    last_hash text not null
);

-- Append-only: no update, no truncate, and deletes only of entries older than the retention
-- cut-off that `enclave purge` sets for its own transaction.
create function audit_append_only() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        if old.at < nullif(current_setting('enclave.audit_purge_before', true), '')::timestamptz then
            return old;
        end if;
    end if;
    raise exception 'the audit trail is append-only: % refused', tg_op;
end
$$;
create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_append_only();
