"""`enclave users ...`: users, groups, passwords and API tokens."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from enclave.cli.common import (
    DataDir,
    JsonFlag,
    emit,
    enclave,
    out,
)
from enclave.pipeline.access import check_name
from enclave.server.accounts import Accounts

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]

users_app = typer.Typer(help="Manage users and their groups.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    group: Annotated[
        list[str] | None, typer.Option("--group", help="Group to add the user to (repeatable).")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a password (for the web UI).")
    ] = False,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a user (or add an existing one to more groups)."""
    secret = read_password(password, password_stdin)
    with enclave(data_dir, as_json) as instance:
        groups = [check_name(g) for g in group or []]
        instance.store.add_user(check_name(name), groups)
        accounts = Accounts(instance.store)
        if secret:
            accounts.set_password(name, secret)
        if admin:
            accounts.set_admin(name, True)
        user = next(u for u in instance.store.users() if u["name"] == name)
        is_admin = accounts.is_admin(name)
    if as_json:
        emit({"user": user["name"], "groups": user["groups"], "admin": is_admin})
    else:
        role = " (admin)" if is_admin else ""
        out.print(f"user {name}{role}: groups {', '.join(user['groups']) or '(none)'}")


def read_password(prompt: bool, stdin: bool) -> str | None:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if prompt:
        return typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return None


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Set a user's password (ends their browser sessions)."""
    secret = read_password(True, password_stdin)
    with enclave(data_dir, as_json) as instance:
        Accounts(instance.store).set_password(name, secret or "")
    if as_json:
        emit({"user": name, "password_set": True})
    else:
        out.print(f"password of {name} set")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="User name.")],
    token_name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a personal API token (shown once; stored hashed)."""
    with enclave(data_dir, as_json) as instance:
        token_id, secret = Accounts(instance.store).create_token(name, token_name)
    if as_json:
        emit({"user": name, "id": token_id, "name": token_name, "token": secret})
    else:
        out.print(f"token {token_id} for {name} (shown once, store it now):\n{secret}")


@users_app.command("tokens")
def users_tokens(
    name: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """List a user's API tokens (never their secrets)."""
    with enclave(data_dir, as_json) as instance:
        tokens = Accounts(instance.store).tokens(name)
    if as_json:
        emit({"user": name, "tokens": [asdict(t) for t in tokens]})
        return
    for token in tokens:
        state = "revoked" if token.revoked else f"last used {token.last_used_at or 'never'}"
        out.print(f"{token.id}  {token.name}  {token.prefix}…  {state}")


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="User name.")],
    token_id: Annotated[int, typer.Argument(help="Token id (from `enclave users tokens`).")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API token."""
    with enclave(data_dir, as_json) as instance:
        revoked = Accounts(instance.store).revoke_token(name, token_id)
    if as_json:
        emit({"user": name, "id": token_id, "revoked": revoked})
    else:
        out.print(f"token {token_id} {'revoked' if revoked else 'not found (or already revoked)'}")
    if not revoked:
        raise typer.Exit(1)


@users_app.command("list")
def users_list(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """List users and their groups."""
    with enclave(data_dir, as_json) as instance:
        users = instance.store.users()
    if as_json:
        emit({"users": [{"user": u["name"], "groups": u["groups"]} for u in users]})
        return
    table = Table("user", "groups")
    for user in users:
        table.add_row(user["name"], ", ".join(user["groups"]))
    out.print(table)


@users_app.command("remove-group")
def users_remove_group(
    name: Annotated[str, typer.Argument(help="User name.")],
    group: Annotated[str, typer.Option("--group", help="Group to take the user out of.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Take a user out of a group."""
    with enclave(data_dir, as_json) as instance:
        removed = instance.store.remove_from_group(name, group)
    if as_json:
        emit({"user": name, "group": group, "removed": removed})
    else:
        out.print(f"{name} {'removed from' if removed else 'was not in'} {group}")
