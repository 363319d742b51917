"""Platform accounts: argon2 hashes in a 0600 SQLite file, roles, validation, the CLI."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from argon2 import PasswordHasher
from typer.testing import CliRunner

from orchestration.cli import app
from settings import get_settings
from streaming.accounts import (
    Account,
    AccountError,
    AccountStore,
    Role,
    generate_password,
    validate_password,
)

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> AccountStore:
    return AccountStore(tmp_path / "data" / "accounts.sqlite", hasher=FAST, clock=clock)


def _rows(path: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM accounts")]
    finally:
        conn.close()


def test_add_and_list_never_show_the_hash(store: AccountStore, clock: Clock) -> None:
    added = store.add("alice", "operator", PASSWORD)
    store.add("tom", Role.TRADER, PASSWORD + "!", member="USR01")
    assert added == Account("alice", Role.OPERATOR, None, clock.now, None)
    assert [(a.name, a.role, a.member) for a in store.list()] == [
        ("alice", Role.OPERATOR, None),
        ("tom", Role.TRADER, "USR01"),
    ]
    assert not any("hash" in f or "stamp" in f or "password" in f for f in Account.__slots__)
    [row, _] = _rows(store.path)
    assert str(row["password_hash"]).startswith("$argon2id$")
    assert PASSWORD not in json.dumps(_rows(store.path))


def test_the_file_is_private(store: AccountStore, tmp_path: Path) -> None:
    store.add("alice", "operator", PASSWORD)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    loose = tmp_path / "loose.sqlite"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    AccountStore(loose, hasher=FAST).list()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "name", ["", "a", "Alice", "1alice", "al ice", "al;ce", "älice", "-alice", "a" * 33]
)
def test_invalid_names_are_refused(store: AccountStore, name: str) -> None:
    with pytest.raises(AccountError, match="invalid account name"):
        store.add(name, "viewer", PASSWORD)
    assert store.list() == []


def test_unknown_role_and_duplicate_name(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="unknown role 'admin': one of operator, trader, viewer"):
        store.add("alice", "admin", PASSWORD)
    store.add("alice", "viewer", PASSWORD)
    with pytest.raises(AccountError, match="'alice' already exists"):
        store.add("alice", "operator", PASSWORD)
    assert [a.role for a in store.list()] == [Role.VIEWER]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "empty password"),
        ("            ", "empty password"),
        ("short", "too short"),
        ("aaaaaaaaaaaaaaaa", "too weak"),
        ("abababababababab", "too weak"),
        ("my-alice-password", "contains the account name"),
        ("correct horse\nbattery", "control characters"),
        ("x" * 2000, "too long"),
    ],
)
def test_weak_passwords_are_refused(store: AccountStore, password: str, reason: str) -> None:
    with pytest.raises(AccountError, match=reason):
        store.add("alice", "operator", password)


def test_member_only_for_traders_and_well_formed(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="only traders"):
        store.add("olga", "operator", PASSWORD, member="USR01")
    with pytest.raises(AccountError, match="invalid member id"):
        store.add("tom", "trader", PASSWORD, member="usr 01")
    assert store.add("tom", "trader", PASSWORD).member is None  # a trader without member is fine


def test_authenticate_records_the_last_login(store: AccountStore, clock: Clock) -> None:
    store.add("alice", "operator", PASSWORD)
    clock.now += timedelta(hours=1)
    assert store.authenticate("alice", "wrong password!") is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("Alice", PASSWORD) is None
    assert store.get("alice").last_login is None  # type: ignore[union-attr]
    account = store.authenticate("alice", PASSWORD)
    assert account is not None and account.role is Role.OPERATOR
    assert account.last_login == clock.now


def test_reset_changes_password_and_stamp(store: AccountStore) -> None:
    store.add("alice", "operator", PASSWORD)
    _, stamp = store.lookup("alice")  # type: ignore[misc]
    store.set_password("alice", "another good secret")
    assert store.authenticate("alice", PASSWORD) is None
    assert store.authenticate("alice", "another good secret") is not None
    assert store.lookup("alice")[1] != stamp  # type: ignore[index]
    with pytest.raises(AccountError, match="too short"):
        store.set_password("alice", "short")
    with pytest.raises(AccountError, match="no account 'bob'"):
        store.set_password("bob", PASSWORD)


def test_remove_and_roles(store: AccountStore) -> None:
    assert not store.has_role(Role.OPERATOR)
    store.add("alice", "operator", PASSWORD)
    store.add("vera", "viewer", PASSWORD)
    assert store.has_role(Role.OPERATOR) and not store.has_role(Role.TRADER)
    store.remove("alice")
    assert not store.has_role(Role.OPERATOR)
    assert store.authenticate("alice", PASSWORD) is None
    with pytest.raises(AccountError, match="no account 'alice'"):
        store.remove("alice")


def test_old_hash_parameters_are_upgraded_at_login(tmp_path: Path) -> None:
    path = tmp_path / "accounts.sqlite"
    AccountStore(path, hasher=FAST).add("alice", "operator", PASSWORD)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    store = AccountStore(path, hasher=stronger)
    stamp = store.lookup("alice")[1]  # type: ignore[index]
    assert store.authenticate("alice", PASSWORD) is not None
    [row] = _rows(path)
    assert "m=2048,t=2,p=1" in str(row["password_hash"])
    assert store.lookup("alice")[1] == stamp  # same password: sessions stay
    assert store.authenticate("alice", PASSWORD) is not None


def test_generated_passwords_are_acceptable_and_distinct() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for p in passwords:
        assert validate_password(p, "alice") == p and len(p) >= 24


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MARKETLAKE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["accounts", *args], input=stdin)

    yield run
    get_settings.cache_clear()
    structlog.reset_defaults()  # the CLI pointed structlog at the runner's stream, now closed


def test_cli_add_list_reset_remove(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("add", "olga", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "olga added: operator" in r.output and PASSWORD not in r.output
    r = cli("add", "tom", "--role", "trader", "--member", "USR01", "--generate")
    assert r.exit_code == 0, r.output
    generated = r.output.split("password (shown once): ")[1].split()[0]
    assert len(generated) >= 24
    r = cli("list", "--json")
    rows = json.loads(r.output)
    assert [(x["name"], x["role"], x["member"]) for x in rows] == [
        ("olga", "operator", None),
        ("tom", "trader", "USR01"),
    ]
    assert set(rows[0]) == {"name", "role", "member", "created", "last_login"}
    assert "argon2" not in cli("list").output
    r = cli("reset", "tom", "--password-stdin", stdin="a new long secret\n")
    assert r.exit_code == 0 and "sessions have ended" in r.output
    store = AccountStore(get_settings().accounts_path)
    assert store.authenticate("tom", "a new long secret") is not None
    assert cli("remove", "tom").exit_code == 0
    assert [a.name for a in store.list()] == ["olga"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "bob", "--role", "admin", "--password-stdin"], PASSWORD, "unknown role"),
        (["add", "Bob", "--role", "viewer", "--password-stdin"], PASSWORD, "invalid account name"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "", "empty password"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "too short"),
        (["add", "bob", "--role", "viewer"], None, "no terminal"),
        (["add", "bob", "--role", "viewer", "--member", "USR01", "--generate"], None, "only traders"),
        (["add", "tom", "--role", "trader", "--member", "USR99", "--generate"], None, "unknown member"),
        (["add", "bob", "--role", "viewer", "--generate", "--password-stdin"], PASSWORD, "exclude"),
        (["reset", "nobody", "--generate"], None, "no account 'nobody'"),
        (["remove", "nobody"], None, "no account 'nobody'"),
    ],
)  # fmt: skip
def test_cli_errors_are_clear(cli, args: list[str], stdin: str | None, message: str) -> None:  # type: ignore[no-untyped-def]
    r = cli(*args, stdin=stdin)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert AccountStore(get_settings().accounts_path).list() == []


def test_cli_duplicate_and_no_password_argument(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("add", "olga", "--role", "operator", "--generate").exit_code == 0
    r = cli("add", "olga", "--role", "viewer", "--generate")
    assert r.exit_code == 2 and "already exists" in r.output
    # there is no way to pass a password as an argument (it would show in ps and shell history)
    r = cli("add", "bob", "--role", "viewer", "--password", PASSWORD)
    assert r.exit_code == 2 and "No such option" in r.output


def test_api_keys_are_shown_once_hashed_and_end_with_their_account(tmp_path) -> None:
    from streaming.accounts import AccountError, AccountStore

    store = AccountStore(tmp_path / "a.sqlite")
    store.add("bot", "trader", "a-long-passphrase-9", member="USR03")
    key = store.add_key("bot")
    acct = store.authenticate_key(key)
    assert acct is not None and acct.member == "USR03"
    assert store.authenticate_key(key.replace("mlk_", "mlx_")) is None
    with pytest.raises(AccountError):
        store.add_key("nobody")
    store.remove("bot")
    assert store.authenticate_key(key) is None and store.keys() == ()
