"""The ``accounts`` commands: add, reset, list and remove platform accounts.

A group of their own because they share how a new password is obtained (asked
for twice, read from stdin or generated; never an argument) and the account
store they change.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestration.cli.cli_shared import console, err
from settings import get_settings

accounts_app = typer.Typer(
    help="Platform accounts: operators, traders (as a clearing member) and viewers. "
    "The Dagster UI, the HTTP API and the FIX gateway log in with them; programs use API keys."
)


def _accounts() -> Any:
    from streaming.accounts import AccountStore

    return AccountStore(get_settings().accounts_path)


def _new_password(name: str, password_stdin: bool, generate: bool) -> str:
    """The new password: generated, read from stdin, or typed twice; never an argument."""
    from streaming.accounts import AccountError, generate_password, validate_password

    if password_stdin and generate:
        err.print("[red]error:[/red] --password-stdin and --generate exclude each other")
        raise typer.Exit(2)
    if generate:
        return generate_password()
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        import getpass

        if not sys.stdin.isatty():
            err.print(
                "[red]error:[/red] no terminal to ask for the password: "
                "pipe it with --password-stdin, or use --generate"
            )
            raise typer.Exit(2)
        password = getpass.getpass(f"Password for {name}: ")
        try:
            validate_password(password, name)  # say so before asking for it again
        except AccountError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if getpass.getpass("Again: ") != password:
            err.print("[red]error:[/red] the passwords differ")
            raise typer.Exit(2)
    return password


PASSWORD_STDIN = typer.Option(
    "--password-stdin", help="Read the password from the first line of stdin."
)
GENERATE = typer.Option("--generate", help="Generate a strong password and print it once.")


@accounts_app.command("add")
def accounts_add(
    name: Annotated[str, typer.Argument(help="Account name: lowercase, e.g. alice.")],
    role: Annotated[str, typer.Option("--role", help="operator, trader or viewer.")],
    member: Annotated[
        str | None,
        typer.Option(help="Traders: the clearing member the account trades as (e.g. USR01)."),
    ] = None,
    password_stdin: Annotated[bool, PASSWORD_STDIN] = False,
    generate: Annotated[bool, GENERATE] = False,
) -> None:
    """Create an account; the password is asked for twice (or read from stdin, or generated)."""
    from streaming.accounts import (
        AccountError,
        Role,
        parse_role,
        validate_member,
        validate_name,
    )
    from streaming.refdata import RefDataError, load_members

    store = _accounts()
    try:
        validate_name(name)
        the_role = parse_role(role)
        if member is not None:
            if the_role is not Role.TRADER:
                raise AccountError(f"only traders trade as a member; a {the_role} has no member")
            validate_member(member)
        if store.get(name) is not None:
            raise AccountError(f"account {name!r} already exists (new password: accounts reset)")
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if member is not None:
        try:
            known = [m.member_id for m in load_members(get_settings().members_csv)]
        except (RefDataError, OSError, KeyError) as exc:
            err.print(f"[red]error:[/red] cannot read the members list: {exc}")
            raise typer.Exit(2) from None
        if member not in known:
            err.print(f"[red]error:[/red] unknown member {member!r}; known: {', '.join(known)}")
            raise typer.Exit(2)
    password = _new_password(name, password_stdin, generate)
    try:
        account = store.add(name, the_role, password, member=member)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    as_member = f" trading as {account.member}" if account.member else ""
    console.print(f"account {account.name} added: {account.role}{as_member}", highlight=False)
    if generate:
        console.print(f"password (shown once): {password}", markup=False, highlight=False)


@accounts_app.command("reset")
def accounts_reset(
    name: Annotated[str, typer.Argument(help="Account name.")],
    password_stdin: Annotated[bool, PASSWORD_STDIN] = False,
    generate: Annotated[bool, GENERATE] = False,
) -> None:
    """Give an account a new password; its open sessions end."""
    from streaming.accounts import AccountError

    store = _accounts()
    if store.get(name) is None:
        err.print(f"[red]error:[/red] no account {name!r}")
        raise typer.Exit(2)
    password = _new_password(name, password_stdin, generate)
    try:
        store.set_password(name, password)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"password of {name} reset; its sessions have ended", highlight=False)
    if generate:
        console.print(f"password (shown once): {password}", markup=False, highlight=False)


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every account: name, role, member, created, last login (never a password hash)."""
    accounts = _accounts().list()

    def when(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    rows: list[dict[str, str | None]] = [
        {
            "name": a.name, "role": a.role.value, "member": a.member,
            "created": when(a.created_at), "last_login": when(a.last_login),
        }
        for a in accounts
    ]  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not rows:
        err.print("no accounts yet: marketlake accounts add NAME --role operator")
        return
    t = Table(title="marketlake accounts")
    for col in ("name", "role", "member", "created", "last login"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(r[k] or "-" for k in ("name", "role", "member", "created", "last_login")))
    console.print(t)


@accounts_app.command("remove")
def accounts_remove(name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Delete an account; its sessions end at their next request."""
    from streaming.accounts import AccountError, Role

    store = _accounts()
    try:
        store.remove(name)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"account {name} removed", highlight=False)
    if not store.has_role(Role.OPERATOR):
        err.print("note: no operator account is left; the Dagster UI lets no one change anything")


key_app = typer.Typer(help="API keys: how programs act as an account over the HTTP API.")
accounts_app.add_typer(key_app, name="key")


@key_app.command("add")
def key_add(
    name: Annotated[str, typer.Argument(help="The account the key acts as.")],
    label: Annotated[
        str | None, typer.Option(help="What the key is for (shown in the list).")
    ] = None,
) -> None:
    """A new API key for NAME, printed once (only its hash is kept).

    Programs send it as X-API-Key or Authorization: Bearer.
    """
    from streaming.accounts import AccountError

    try:
        key = _accounts().add_key(name, label)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    sys.stdout.write(key + "\n")
    err.print(
        "keep it now: it is not shown again (revoke with `marketlake accounts key revoke ID`)"
    )


@key_app.command("list")
def key_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's keys.")] = None,
) -> None:
    """Every API key: id, account, label, created, last used (never the secret)."""
    t = Table(title="API keys")
    for col in ("id", "account", "label", "created", "last used"):
        t.add_column(col)
    for k in _accounts().keys(name):
        t.add_row(k.key_id, k.name, k.label or "-", k.created_at.isoformat(timespec="seconds"),
                  k.last_used.isoformat(timespec="seconds") if k.last_used else "-")  # fmt: skip
    console.print(t)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from the list).")],
) -> None:
    """Revoke a key: its next request is refused."""
    from streaming.accounts import AccountError

    try:
        _accounts().revoke_key(key_id)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"API key {key_id} revoked", highlight=False)
