-- Accounts for the server: passwords, admin role, API tokens, browser sessions, chat history.
create table accounts (
    user_id bigint primary key references principals(id) on delete cascade,
    password_hash text,
    is_admin boolean not null default false,
    created_at timestamptz not null default now()
);

-- Tokens and session ids are random 256-bit secrets: stored as sha256, never in clear.
create table api_tokens (
    id bigserial primary key,
    user_id bigint not null references principals(id) on delete cascade,
    name text not null,
    token_hash text not null unique,
    prefix text not null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

create table sessions (
    token_hash text primary key,
    user_id bigint not null references principals(id) on delete cascade,
    csrf_token text not null,
    expires_at timestamptz not null
);

create table conversations (
    id bigserial primary key,
    user_id bigint not null references principals(id) on delete cascade,
    title text not null,
    created_at timestamptz not null default now()
);
create index conversations_user on conversations(user_id, id);

create table messages (
    id bigserial primary key,
    conversation_id bigint not null references conversations(id) on delete cascade,
    role text not null check (role in ('user', 'assistant')),
    content text not null,
    sources jsonb not null default '[]',
    created_at timestamptz not null default now()
);
create index messages_conversation on messages(conversation_id, id);

-- Who uploaded a document through the server (may change its access list or delete it).
alter table documents add column owner_id bigint references principals(id) on delete set null;
