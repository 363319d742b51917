"""One settings object: every backend and location is chosen here, never in business code.

Values come from environment variables with the prefix ``MARKETLAKE_`` or an
optional ``.env`` file, e.g. ``MARKETLAKE_DATA_DIR=/srv/lake``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streaming.matcher import StpMode  # the matcher's modes, not a copy of them

REPO_ROOT = Path(__file__).resolve().parent


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "marketlake"


class Settings(BaseSettings):
    """Platform configuration; the mode is configuration only."""

    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_", env_file=".env", extra="ignore")

    mode: Literal["embedded", "stack"] = "embedded"
    data_dir: Path = Field(
        default=REPO_ROOT / "data", description="local outputs (event log, Parquet)"
    )
    shared_data_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "data",
        description="public market data used by reality tests (LOBSTER, prices, filings)",
    )
    event_log: Literal["sqlite", "kafka"] = "sqlite"
    namespace: str = Field(default="", description="prefix for every topic and consumer group")
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="an existing cluster (default: the local stack's broker)"
    )
    securities_csv: Path | None = None
    members_csv: Path | None = None
    calendar_toml: Path | None = None
    stp_mode: StpMode = "cancel_resting"
    price_band_pct: float = 20.0
    bar_grace_ms: int = 2_000
    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="downloads and installs (Kafka jars, ...), outside the repository",
    )
    stack_dir: Path | None = Field(
        default=None, description="services' config, data and logs (default: <cache_dir>/stack)"
    )
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap_mb: int = 1024
    kafka_partitions: int = 4
    kafka_retention_hours: int = 168
    kafka_username: str | None = Field(
        default=None, description="SASL/SCRAM-SHA-512 login of an existing cluster"
    )
    kafka_password: SecretStr | None = Field(default=None, description="kafka_username's password")
    kafka_credentials_file: Path | None = Field(
        default=None,
        description="JSON with the Kafka login (username, password); default: the local "
        "stack's broker's generated credentials",
    )
    postgres_port: int = 15432
    postgres_dir: Path | None = Field(
        default=None,
        description="PostgreSQL's home; default <stack dir>/postgres, or a system directory "
        "when running as root and the postgres user cannot reach the stack dir",
    )
    minio_port: int = 19000
    minio_console_port: int = 19001
    trino_port: int = 18080
    superset_port: int = 18088
    dagster_port: int = 3000
    trino_heap_mb: int = 2560
    lake_catalog: str = Field(
        default="marketlake",
        description="Iceberg catalog name: pyiceberg's SqlCatalog and Trino's JDBC catalog-name",
    )
    lake_bucket: str = "marketlake"
    lake_storage: Literal["local", "s3"] | None = Field(
        default=None, description="warehouse: local directory or S3 bucket (default by mode)"
    )
    query_engine: Literal["duckdb", "trino"] | None = Field(
        default=None, description="SQL engine for queries (default by mode)"
    )
    clearing_fee_bps: float = Field(
        default=0.5, description="clearing fee per fill, bps of notional"
    )
    clearing_fee_per_fill: float = Field(default=0.0, description="fixed fee per fill (currency)")
    allow_short: bool = Field(default=False, description="clearing accepts short positions")
    fix_comp_id: str = Field(
        default="MLX", pattern=r"^[A-Z0-9]{2,16}$",
        description="the exchange's CompID on FIX (members' sessions target it)",
    )  # fmt: skip
    partitions_start: str = Field(
        default="2025-01-02", description="first trading-day partition (YYYY-MM-DD)"
    )
    sec_user_agent: str | None = Field(
        default=None,
        description="'<app> <contact email>', which SEC EDGAR requires; EDGAR fetches fail without",
    )
    polygon_api_key: SecretStr | None = Field(default=None, description="news and market-data API")
    sec_archives_base: str | None = Field(default=None, description="EDGAR archive base URL")
    ingest_timeout_s: float | None = Field(default=None, description="per-request timeout")
    ingest_max_body_bytes: int | None = Field(default=None, description="larger bodies refused")
    ingest_rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description="requests per second by source type (JSON), e.g. a paid API plan's limit",
    )
    intel_registry_yml: Path | None = Field(
        default=None, description="source registry (default: intelligence/registry.yml)"
    )
    intel_base_urls: dict[str, str] = Field(
        default_factory=dict,
        description="base URL overrides by name (JSON), e.g. to point every provider at a mirror",
    )
    extractor: Literal["lexicon", "ollama"] = Field(
        default="lexicon", description="document extraction backend (ollama falls back to lexicon)"
    )
    ollama_host: str | None = Field(
        default=None, description="Ollama server URL, e.g. http://127.0.0.1:11434"
    )
    ollama_model: str = Field(default="marketlake-gemma3", description="model name on the server")
    ollama_timeout_s: float = Field(default=60.0, description="per-request timeout for the model")
    ollama_retries: int = Field(default=2, description="retries before falling back to lexicon")
    intel_company_layer: bool = Field(default=True, description="aggregate company news")
    intel_macro_layer: bool = Field(default=True, description="aggregate macro events")
    intel_competitive_layer: bool = Field(
        default=True, description="propagate signals through competitor links"
    )
    intel_macro_weight: float = Field(default=0.3, description="weight of the macro layer")
    intel_competitive_weight: float = Field(
        default=0.2, description="weight of the competitive layer"
    )
    log_json: bool = False
    log_level: str = "INFO"

    @property
    def stack_home(self) -> Path:
        return self.stack_dir or self.cache_dir / "stack"

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite"

    @property
    def storage(self) -> Literal["local", "s3"]:
        return self.lake_storage or ("s3" if self.mode == "stack" else "local")

    @property
    def engine(self) -> Literal["duckdb", "trino"]:
        return self.query_engine or ("trino" if self.mode == "stack" else "duckdb")

    @property
    def event_log_path(self) -> Path:
        return self.data_dir / "eventlog.sqlite"

    @property
    def accounts_path(self) -> Path:
        """The platform's accounts (UI, gateways): SQLite, mode 0600."""
        return self.data_dir / "accounts.sqlite"

    @property
    def ui_session_key_path(self) -> Path:
        """The key that signs the UI's session cookies (mode 0600; delete it to log everyone out)."""
        return self.data_dir / "ui-session.key"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
