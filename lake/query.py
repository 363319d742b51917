"""SQL over the lake, on DuckDB (embedded) or Trino (stack), behind one interface.

The same query text runs on both: tables are named ``namespace.table``
(``raw.trades``). Trino resolves that in its ``iceberg`` catalog; DuckDB gets a
view per catalog table over ``iceberg_scan`` of the table's current metadata,
so it reads exactly the snapshot pyiceberg committed, with Iceberg's schema
evolution. DuckDB's extensions come from their PyPI packages (installed from
the package directory, never downloaded at run time).

Read-only by default, in two layers:

- Statements: only queries run (SELECT, WITH, VALUES, TABLE, FROM, SHOW,
  DESCRIBE, SUMMARIZE, PIVOT, and EXPLAIN of one of those); anything else
  (COPY, ATTACH, INSTALL, LOAD, CREATE, INSERT, SET, PRAGMA, CALL, several
  statements, ...) raises :class:`LakeQueryError` naming its kind. The text is
  classified by DuckDB's own parser, on both engines (the SQL is the same);
  Trino-only syntax DuckDB cannot parse is accepted only when it starts with a
  Trino query or SHOW/DESCRIBE keyword (Trino runs exactly one statement per
  request, and its statement kind is fixed by its first keyword).
  ``allow_writes=True`` lifts this filter (``marketlake query --write``).
- DuckDB itself, whatever the filter says: once the extensions, the S3 secret
  and the connection are set up, file and network access is limited to the
  warehouse (``allowed_directories``), everything else is off
  (``enable_external_access=false``, no persistent secrets) and the
  configuration is locked (``lock_configuration=true``), so ``read_text('/etc/passwd')``,
  ``COPY ... TO '/tmp/x'``, ``ATTACH 'x.db'`` or ``INSTALL`` fail even with writes
  allowed. Inside the warehouse DuckDB can still write when writes are allowed:
  only the store's credentials can prevent that.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lake.catalog import S3Config

if TYPE_CHECKING:
    import duckdb


class LakeQueryError(RuntimeError):
    """A query that failed; the message is the engine's, prefixed with the engine's name."""


class ReadOnlyError(LakeQueryError):
    """A statement refused because the engine is read-only (writes were not allowed)."""


class QueryEngine(Protocol):
    name: str

    def query(self, sql: str) -> pa.Table: ...

    def close(self) -> None: ...


# -- the statement filter ---------------------------------------------------------------

# First keywords of a query in DuckDB's grammar ("(" opens a parenthesised query); the
# parser must also call the statement a SELECT, so "WITH ... INSERT" is still refused.
QUERY_KEYWORDS = frozenset(
    {"SELECT", "WITH", "VALUES", "TABLE", "FROM", "SHOW", "DESCRIBE", "DESC", "SUMMARIZE",
     "PIVOT", "UNPIVOT", "("}
)  # fmt: skip
# Trino statements that only read, by first keyword (Trino's grammar fixes the kind by it).
TRINO_READ_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC"})
_EXPLAIN_MODIFIERS = frozenset({"ANALYZE", "ANALYSE", "VERBOSE"})
ALLOWED = "SELECT, WITH, VALUES, SHOW, DESCRIBE and EXPLAIN of a query"

_TOKEN = re.compile(
    r"""(?P<skip>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
      | (?P<word>[^\W\d][\w$]*)
      | (?P<string>'(?:[^']|'')*'?|"(?:[^"]|"")*"?)
      | (?P<other>.)""",
    re.S | re.X,
)


def _tokens(sql: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of each token, words upper-cased; whitespace and comments dropped."""
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind != "skip":
            out.append((kind, m.group().upper() if kind == "word" else m.group(), m.start()))
    return out


def _explained(sql: str, tokens: list[tuple[str, str, int]]) -> str:
    """The statement an ``EXPLAIN [ANALYZE|VERBOSE ...] [(options)] <statement>`` runs."""
    i = 1
    while i < len(tokens) and tokens[i][1] in _EXPLAIN_MODIFIERS:
        i += 1
    if i < len(tokens) and tokens[i][1] == "(":
        inside = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if inside not in QUERY_KEYWORDS:  # an option list, not a parenthesised query
            depth = 0
            for j in range(i, len(tokens)):
                depth += {"(": 1, ")": -1}.get(tokens[j][1], 0)
                if depth == 0:
                    i = j + 1
                    break
            else:
                return ""
    return sql[tokens[i][2] :] if i < len(tokens) else ""


def _parser() -> duckdb.DuckDBPyConnection:
    """An empty DuckDB without file or network access, to parse text for another engine."""
    import duckdb

    return duckdb.connect(
        config={"enable_external_access": False, "autoinstall_known_extensions": False,
                "autoload_known_extensions": False, "lock_configuration": True}
    )  # fmt: skip


def check_read_only(
    sql: str, engine: str = "duckdb", con: duckdb.DuckDBPyConnection | None = None
) -> None:
    """Raise :class:`ReadOnlyError` unless ``sql`` is one query (see the module docstring).

    ``engine`` is the engine the text is for (``duckdb`` or ``trino``); ``con`` the
    DuckDB connection whose parser classifies it (a new empty, locked one if None).
    Text DuckDB cannot parse raises :class:`LakeQueryError` with the parser's message
    (on Trino, only if it is not a query or SHOW/DESCRIBE by its first keyword).
    """
    own = con is None
    parser = _parser() if con is None else con
    try:
        refused = _refused(sql, engine, parser)
    finally:
        if own:
            parser.close()
    if refused is not None:
        raise ReadOnlyError(
            f"{engine}: {refused} refused: marketlake query is read-only and runs only "
            f"{ALLOWED} (an operator can allow other statements with `marketlake query --write`)"
        )


def _refused(sql: str, engine: str, con: duckdb.DuckDBPyConnection) -> str | None:
    """What is refused in ``sql`` ("COPY statement", ...), or None if it is one query."""
    import duckdb

    tokens = _tokens(sql)
    if not tokens:
        return "an empty statement"
    first = tokens[0][1]
    if first not in QUERY_KEYWORDS and first != "EXPLAIN":
        return f"{first} statement" if tokens[0][0] == "word" else f"statement starting {first!r}"
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        # Trino-only syntax: Trino runs one statement per request, its first word is its kind
        if engine != "trino" or any(t[1] == ";" for t in tokens[:-1]):
            raise LakeQueryError(f"{engine}: {exc}") from exc
        if first == "EXPLAIN":
            return _refused_explained(sql, tokens, engine, con)
        return None if first in TRINO_READ_KEYWORDS else f"{first} statement"
    kinds = [s.type.name for s in statements]
    if not kinds:
        return "an empty statement"
    if len(kinds) > 1:
        return f"{len(kinds)} statements ({'; '.join(kinds)})"
    if first == "EXPLAIN" and kinds == ["EXPLAIN"]:
        return _refused_explained(sql, tokens, engine, con)
    return None if kinds == ["SELECT"] else f"{kinds[0]} statement"


def _refused_explained(
    sql: str, tokens: list[tuple[str, str, int]], engine: str, con: duckdb.DuckDBPyConnection
) -> str | None:
    """EXPLAIN ANALYZE runs its statement, so EXPLAIN must hold a query too."""
    inner = _refused(_explained(sql, tokens), engine, con)
    return None if inner is None else f"EXPLAIN of {inner}"


def _extension_file(name: str) -> Path:
    import duckdb

    package = importlib.import_module(f"duckdb_extension_{name}")
    root = Path(package.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
    found = sorted(root.glob(f"{name}.duckdb_extension"))
    if not found:
        raise LakeQueryError(
            f"duckdb: extension {name} for DuckDB {duckdb.__version__} not found in the "
            f"duckdb-extension-{name} package; its version must equal DuckDB's"
        )
    return found[0]


def warehouse_prefix(warehouse: str) -> str:
    """The warehouse as a DuckDB ``allowed_directories`` entry, ending in ``/``.

    ``file:///lake/wh`` and ``/lake/wh`` become ``/lake/wh/``; ``s3://bucket/wh``
    stays a URL. The trailing slash keeps ``/lake/wh2`` out.
    """
    parsed = urlparse(warehouse)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme else warehouse
        prefix = str(Path(path).resolve())
    else:
        prefix = warehouse
    return prefix if prefix.endswith("/") else prefix + "/"


class DuckDBEngine:
    """DuckDB in process, one view per Iceberg table of the catalog, read-only by default.

    File and network access is limited to ``warehouse`` (default: the catalog's
    ``warehouse`` property) and the configuration locked, whether or not writes
    are allowed; ``allow_writes`` lifts only the statement filter.
    """

    name = "duckdb"

    def __init__(
        self,
        catalog: Catalog,
        s3: S3Config | None = None,
        *,
        allow_writes: bool = False,
        warehouse: str | None = None,
    ) -> None:
        import duckdb

        self.catalog = catalog
        self.allow_writes = allow_writes
        self.con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                          "autoload_known_extensions": False,
                                          "allow_persistent_secrets": False})  # fmt: skip
        try:
            for ext in ("avro", "iceberg", "httpfs"):
                self.con.install_extension(str(_extension_file(ext)))
                self.con.load_extension(ext)
            if s3 is not None:
                self.con.execute(
                    "CREATE OR REPLACE SECRET lake (TYPE s3, KEY_ID ?, SECRET ?, SESSION_TOKEN ?, "
                    "REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL ?)",
                    [s3.access_key, s3.secret_key, s3.session_token or "", s3.region, s3.host,
                     s3.use_ssl],
                )  # fmt: skip
            location = warehouse or catalog.properties.get("warehouse")
            self.allowed = [warehouse_prefix(location)] if location else []
            self._lock_down()
        except BaseException:
            self.con.close()
            raise
        self._views: dict[str, str] = {}

    def _lock_down(self) -> None:
        """Files and URLs outside the warehouse off, then the configuration locked."""
        self.con.execute("SET allowed_directories = ?", [self.allowed])
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def refresh(self) -> None:
        """Point every view at its table's current snapshot (new tables included)."""
        for (namespace,) in self.catalog.list_namespaces():
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
            for ident in self.catalog.list_tables(namespace):
                name = ".".join(ident)
                location = self.catalog.load_table(ident).metadata_location
                if self._views.get(name) == location:
                    continue
                quoted = ".".join(f'"{part}"' for part in ident)
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {quoted} AS SELECT * FROM iceberg_scan('{location}')"
                )
                self._views[name] = location

    def query(self, sql: str) -> pa.Table:
        import duckdb

        if not self.allow_writes:
            check_read_only(sql, self.name, self.con)
        try:
            self.refresh()  # a table outside the warehouse fails here, as out of reach
            return self.con.execute(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise LakeQueryError(f"duckdb: {exc}") from exc

    def close(self) -> None:
        self.con.close()


class TrinoEngine:
    """Trino over its ``iceberg`` catalog (the same JDBC catalog pyiceberg writes).

    Read-only by default: the text is classified (by DuckDB's parser) before it
    is sent; ``allow_writes`` sends anything. Whatever is sent, Trino's own
    access control decides with the rights of ``user`` (the stack's reader may
    only read, whatever ``allow_writes`` says).

    With a ``password`` the connection is HTTPS with basic authentication
    (``https`` defaults to True then), verified against ``ca_file`` (a PEM file,
    e.g. the stack's self-signed certificate) or requests' CA bundle. The HTTP
    session ignores ``$REQUESTS_CA_BUNDLE`` and proxy variables (``trust_env``
    off), which would otherwise override ``ca_file`` or reroute 127.0.0.1.
    """

    name = "trino"

    def __init__(
        self,
        host: str,
        port: int,
        user: str = "marketlake",
        catalog: str = "iceberg",
        *,
        password: str | None = None,
        https: bool | None = None,
        ca_file: str | Path | None = None,
        allow_writes: bool = False,
    ) -> None:
        import requests
        import trino

        self.allow_writes = allow_writes
        secure = password is not None if https is None else https
        if password is not None and not secure:
            raise LakeQueryError("trino: a password is sent over HTTPS only")
        session = requests.Session()
        session.trust_env = False
        session.verify = str(ca_file) if ca_file is not None else True
        self.conn = trino.dbapi.connect(  # type: ignore[no-untyped-call]  # trino's client is untyped
            host=host,
            port=port,
            user=user,
            catalog=catalog,
            http_scheme="https" if secure else "http",
            auth=trino.auth.BasicAuthentication(user, password) if password is not None else None,
            http_session=session,
            request_timeout=300,
        )

    def query(self, sql: str) -> pa.Table:
        import trino

        if not self.allow_writes:
            check_read_only(sql, self.name)
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            rows = cur.fetchall()
        except trino.exceptions.TrinoQueryError as exc:
            raise LakeQueryError(f"trino: {exc.error_name}: {exc.message}") from exc
        except (trino.exceptions.Error, trino.exceptions.HttpError) as exc:
            # HttpError: refused before the query ran (401 without valid credentials, ...)
            raise LakeQueryError(f"trino: {exc}") from exc
        names = [d[0] for d in cur.description or []]
        columns: dict[str, list[Any]] = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        return pa.table(columns) if names else pa.table({})

    def columns(self, sql: str) -> list[tuple[str, str]]:
        """``(name, Trino type)`` of each column ``sql`` returns, without reading a row.

        The query runs as ``SELECT * FROM (sql) LIMIT 0``: Trino plans it against
        the tables it names (so a missing table or column fails here) and answers
        with its columns' types, e.g. ``varchar``, ``decimal(18,4)``, ``timestamp(3)``.
        Rows as :meth:`query` returns them cannot say that (an empty result has no
        values to infer types from).
        """
        import trino

        wrapped = f"SELECT * FROM (\n{sql}\n) AS described LIMIT 0"
        if not self.allow_writes:
            check_read_only(wrapped, self.name)
        cur = self.conn.cursor()
        try:
            cur.execute(wrapped)
            cur.fetchall()
        except trino.exceptions.TrinoQueryError as exc:
            raise LakeQueryError(f"trino: {exc.error_name}: {exc.message}") from exc
        except (trino.exceptions.Error, trino.exceptions.HttpError) as exc:
            raise LakeQueryError(f"trino: {exc}") from exc
        return [(str(d[0]), str(d[1])) for d in cur.description or []]

    def close(self) -> None:
        self.conn.close()
