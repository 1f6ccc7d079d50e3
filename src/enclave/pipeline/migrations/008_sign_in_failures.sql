-- Failed sign-ins, shared by every server replica: the throttle counts them by user name
-- and client address together, by address alone and by user name alone.
create table sign_in_failures (
    at timestamptz not null default now(),
    user_name text not null,
    address text not null
);
create index sign_in_failures_name on sign_in_failures (user_name, at);
create index sign_in_failures_address on sign_in_failures (address, at);
