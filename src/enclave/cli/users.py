"""`enclave users ...`: users, groups, passwords and API tokens."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from enclave.cli.common import (
    DataDir,
    JsonFlag,
    emit,
    enclave,
    out,
)
from enclave.config import ConfigError
from enclave.pipeline.access import check_name
from enclave.pipeline.audit import Event, operator

if TYPE_CHECKING:
    from enclave.pipeline.wiring import Enclave
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
        accounts = accounts_of(instance)
        if secret:
            accounts.set_password(name, secret)
        if admin:
            accounts.set_admin(name, True)
        user = next(u for u in instance.store.users() if u["name"] == name)
        is_admin = accounts.is_admin(name)
        detail = {"groups": groups, "admin": is_admin, "password_set": bool(secret)}
        instance.store.record(Event(operator(), "cli", "user_add", subject=name, detail=detail))
    if as_json:
        emit({"user": user["name"], "groups": user["groups"], "admin": is_admin})
    else:
        role = " (admin)" if is_admin else ""
        out.print(f"user {name}{role}: groups {', '.join(user['groups']) or '(none)'}")


def accounts_of(instance: Enclave) -> Accounts:
    """The accounts (the server's module, imported only by the commands that need it)."""
    from enclave.server.accounts import Accounts

    return Accounts(instance.store)


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
        accounts_of(instance).set_password(name, secret or "")
        instance.store.record(Event(operator(), "cli", "password_set", subject=name))
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
        token_id, secret = accounts_of(instance).create_token(name, token_name)
        detail = {"token_id": token_id}
        instance.store.record(Event(operator(), "cli", "token_create", subject=name, detail=detail))
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
        tokens = accounts_of(instance).tokens(name)
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
        revoked = accounts_of(instance).revoke_token(name, token_id)
        if revoked:
            detail = {"token_id": token_id}
            instance.store.record(
                Event(operator(), "cli", "token_revoke", subject=name, detail=detail)
            )
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
        if removed:
            detail = {"group": group}
            instance.store.record(
                Event(operator(), "cli", "group_leave", subject=name, detail=detail)
            )
    if as_json:
        emit({"user": name, "group": group, "removed": removed})
    else:
        out.print(f"{name} {'removed from' if removed else 'was not in'} {group}")


@users_app.command("export")
def users_export(
    name: Annotated[str, typer.Argument(help="User name.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: NAME.json).")
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Everything stored about a person, as one JSON file (GDPR Art. 15)."""
    target = output or Path(f"{name}.json")
    with enclave(data_dir, as_json) as instance:
        record = instance.store.person_record(name)
        if record is None:
            raise ConfigError(f"no user {name!r}")
        target.write_text(
            json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
        )
        instance.store.record(Event(operator(), "cli", "user_export", subject=name))
    summary = {
        "user": name,
        "file": str(target),
        "conversations": len(record["conversations"]),
        "audit_entries": len(record["audit_entries"]),
    }
    if as_json:
        emit(summary)
    else:
        out.print(
            f"wrote {target}: account, {len(record['groups'])} groups, "
            f"{len(record['tokens'])} tokens, {summary['conversations']} conversations, "
            f"{summary['audit_entries']} audit entries"
        )


@users_app.command("erase")
def users_erase(
    name: Annotated[str, typer.Argument(help="User name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Erase a person (GDPR Art. 17): account, sessions, tokens, memberships, conversations.

    Their audit entries stay, under a keyed hash instead of the name; the chain holds.
    """
    if not yes and not as_json:
        typer.confirm(f"erase {name} and everything stored about them?", abort=True)
    with enclave(data_dir, as_json) as instance:
        if not instance.store.user_exists(name):
            raise ConfigError(f"no user {name!r}")
        # Recorded first: the erasure then removes the name from this entry too.
        instance.store.record(Event(operator(), "cli", "user_erase", subject=name))
        instance.store.erase_person(name)
    if as_json:
        emit({"erased": name})
    else:
        out.print(f"erased {name}; their audit entries remain under a pseudonym")


@users_app.command("unlock")
def users_unlock(
    name: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Let a user sign in again at once after failed attempts locked them out."""
    from enclave.server.throttle import LoginThrottle

    with enclave(data_dir, as_json) as instance:
        failures = LoginThrottle(instance.store).unlock(name)
        detail = {"failures": failures}
        instance.store.record(Event(operator(), "cli", "unlock", subject=name, detail=detail))
    if as_json:
        emit({"user": name, "failures_cleared": failures})
    else:
        out.print(f"{name}: {failures} failed sign-ins forgotten")
