"""One Settings object, read from NAS_* environment variables (the same names docker-compose sets)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


class Settings(BaseModel):
    data_dir: Path = Field(Path("nas-data"), description="NAS_DATA_DIR: runs, uploads, exports, SQLite file")
    database_url: str | None = Field(None, description="NAS_DATABASE_URL; default: SQLite file in the data dir")
    ray_address: str | None = Field(None, description="NAS_RAY_ADDRESS: join this Ray cluster instead of a local one")
    admin_token: str | None = Field(None, description="NAS_ADMIN_TOKEN: the admin's token on an empty database")
    max_concurrent: int = Field(1, ge=1, description="NAS_MAX_CONCURRENT: searches running at once")
    lease_seconds: float = Field(30.0, gt=0, description="NAS_LEASE_SECONDS: a lost worker's search requeues after this")
    max_attempts: int = Field(3, ge=1, description="NAS_MAX_ATTEMPTS")
    cors_origins: list[str] = Field(default_factory=list, description="NAS_CORS_ORIGINS, comma-separated; empty: CORS off")
    max_body_bytes: int = Field(64 * 1024 * 1024, description="NAS_MAX_BODY_BYTES: request size limit")
    session_secret: str | None = Field(None, description="NAS_SESSION_SECRET: signs dashboard cookies")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'nas.db').resolve()}"

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        env = os.environ
        values: dict = {}
        for name in cls.model_fields:
            raw = env.get(f"NAS_{name.upper()}")
            if raw is None or raw == "":
                continue
            values[name] = [o.strip() for o in raw.split(",") if o.strip()] if name == "cors_origins" else raw
        return cls.model_validate(values | {k: v for k, v in overrides.items() if v is not None})
