"""Configuration from the environment (the contract's variables, plus limits)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from strawberry.http.websocket_origin import normalize_allowed_origins

from gateway.project import resolve_in_project


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    mongodb_uri: str | None = Field(default=None, alias="MONGODB_URI")
    db_name: str = Field(default="scv", alias="SCV_DB_NAME")
    # relative to the project root, so every working directory inside it means the same place
    data_dir: Path = Field(default=Path(".scv-data"), alias="SCV_DATA_DIR", validate_default=True)
    host: str = Field(default="127.0.0.1", alias="SCV_HOST")
    port: int = Field(default=8000, alias="SCV_PORT")
    jwt_secret: str | None = Field(default=None, alias="SCV_JWT_SECRET")
    default_region: str = Field(default="US", alias="SCV_DEFAULT_REGION")
    retention_days: int = Field(default=60, ge=1, alias="SCV_RETENTION_DAYS")
    web_session_gap_minutes: int = Field(
        default=30, ge=1, le=24 * 60, alias="SCV_WEB_SESSION_GAP_MINUTES"
    )
    change_retention_days: int = Field(default=7, ge=1, le=3650, alias="SCV_CHANGE_RETENTION_DAYS")
    workers: int = Field(default=1, ge=1, le=64, alias="SCV_WORKERS")  # scv serve's processes

    db_timeout_ms: int = Field(default=5000, ge=100, alias="SCV_DB_TIMEOUT_MS")
    # connections to the database for requests, shared out among scv serve's workers
    # (gateway/database.py: request_pool_size); maxPoolSize in MONGODB_URI overrides it
    db_connections: int = Field(default=16, ge=1, le=10_000, alias="SCV_DB_CONNECTIONS")
    # GraphQL requests executing at once, shared out among the workers; the rest wait their
    # turn in arrival order (gateway/admission.py)
    active_requests: int = Field(default=8, ge=1, le=10_000, alias="SCV_ACTIVE_REQUESTS")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, alias="SCV_MAX_BODY_BYTES")
    max_depth: int = Field(default=12, ge=1, alias="SCV_MAX_DEPTH")
    max_aliases: int = Field(default=30, ge=1, alias="SCV_MAX_ALIASES")
    max_tokens: int = Field(default=5000, ge=10, alias="SCV_MAX_TOKENS")
    max_cost: int = Field(default=50000, ge=1, alias="SCV_MAX_COST")
    # origins allowed by CORS, comma-separated; unset or empty: no CORS headers at all
    cors_origins: str | None = Field(default=None, alias="SCV_CORS_ORIGINS")
    rate_limit_per_minute: int = Field(default=6000, ge=1, alias="SCV_RATE_LIMIT_PER_MINUTE")
    max_subscriptions: int = Field(default=10, ge=1, le=1000, alias="SCV_MAX_SUBSCRIPTIONS")
    embedded_test_commands: bool = Field(default=False, alias="SCV_EMBEDDED_TEST_COMMANDS")
    # where GraphiQL's npm packages are installed; unset → the repository's web/node_modules
    graphiql_assets: Path | None = Field(default=None, alias="SCV_GRAPHIQL_ASSETS")

    @field_validator("data_dir")
    @classmethod
    def _in_project(cls, value: Path) -> Path:
        return resolve_in_project(value)

    def share_per_worker(self, total: int, *, at_least: int) -> int:
        """One ``scv serve`` worker's share of ``total`` (connections, request places) among
        the ``SCV_WORKERS`` processes, never less than ``at_least``."""
        return max(at_least, total // self.workers)

    @property
    def dev_secret_file(self) -> Path:
        """Where development mode keeps its generated secret (owner-only), next to the data."""
        return self.data_dir.with_name(self.data_dir.name + ".secret")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str | None) -> str | None:
        _split_origins(value)  # "https://app.example.com" or "*", else a ValueError saying why
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        """SCV_CORS_ORIGINS as origins the way browsers send them (lower-case scheme and host,
        no default port, no trailing slash)."""
        return _split_origins(self.cors_origins)


def _split_origins(value: str | None) -> list[str]:
    entries = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
    return sorted(normalize_allowed_origins(entries))
