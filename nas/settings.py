"""The service's settings: one object, read once from NAS_* environment variables (the names
docker-compose sets), and handed to the API, the dispatcher and the workers alike."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from nas.storage import ArtifactStore


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NAS_", extra="ignore")

    data_dir: Path = Field(Path("nas-data"), description="NAS_DATA_DIR: runs, uploads, exports, SQLite file")
    database_url: str | None = Field(None, description="NAS_DATABASE_URL; default: SQLite file in the data dir")
    ray_address: str | None = Field(None, description="NAS_RAY_ADDRESS: join this Ray cluster instead of a local one")
    storage_url: str | None = Field(None, description="NAS_STORAGE_URL: mirror run folders, uploads and tables to "
                                    "this fsspec URL (e.g. s3://bucket/nas) so workers need not share the data dir")
    admin_token: str | None = Field(None, description="NAS_ADMIN_TOKEN: the admin's token on an empty database")
    max_concurrent: int = Field(1, ge=1, description="NAS_MAX_CONCURRENT: jobs running at once")
    lease_seconds: float = Field(30.0, gt=0, description="NAS_LEASE_SECONDS: a lost worker's job requeues after this")
    max_attempts: int = Field(3, ge=1, description="NAS_MAX_ATTEMPTS")
    poll_seconds: float = Field(0.5, gt=0, description="NAS_POLL_SECONDS: how often the dispatcher looks at the queue")
    start_timeout: float = Field(300.0, gt=0, description="NAS_START_TIMEOUT: seconds a job may wait for free "
                                 "resources (e.g. a GPU) before it fails, freeing its slot")
    threads_per_job: int = Field(0, ge=0, description="NAS_THREADS_PER_JOB: torch threads per job; 0: cores / max_concurrent")
    worker_niceness: int = Field(0, ge=0, le=19, description="NAS_WORKER_NICENESS: the nice value of a local Ray's "
                                 "workers (a cluster's own: RAY_worker_niceness where `ray start` runs)")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="NAS_CORS_ORIGINS, comma-separated; empty: CORS off")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1, description="NAS_MAX_BODY_BYTES: request size limit")
    session_secret: str | None = Field(None, description="NAS_SESSION_SECRET: signs dashboard cookies")
    secure_cookies: bool = Field(False, description="NAS_SECURE_COOKIES: mark the dashboard cookie Secure (served "
                                 "over HTTPS, e.g. behind a TLS proxy)")
    # what one user may ask of the service (a submission beyond them is a 422 naming the field)
    max_dataset_bytes: int = Field(2 * 1024**3, ge=1, description="NAS_MAX_DATASET_BYTES: an upload's arrays, decompressed")
    max_classes: int = Field(10_000, ge=2, description="NAS_MAX_CLASSES: labels must lie below this")
    max_train_steps: int = Field(200_000, ge=1, description="NAS_MAX_TRAIN_STEPS: train.steps")
    max_train_epochs: int = Field(10_000, ge=1, description="NAS_MAX_TRAIN_EPOCHS: train.epochs")
    max_budget_minutes: int = Field(7 * 24 * 60, ge=1, description="NAS_MAX_BUDGET_MINUTES: budget.minutes")
    max_random_subnets: int = Field(16, ge=0, description="NAS_MAX_RANDOM_SUBNETS: train.random_subnets")
    max_evaluations: int = Field(20_000, ge=1, description="NAS_MAX_EVALUATIONS: search.evaluations")
    max_population: int = Field(1_000, ge=2, description="NAS_MAX_POPULATION: search.population")
    max_finalize_epochs: int = Field(200, ge=1, description="NAS_MAX_FINALIZE_EPOCHS: finalize.epochs")
    max_finalize_top_k: int = Field(20, ge=1, description="NAS_MAX_FINALIZE_TOP_K: finalize.top_k")
    max_streams_per_user: int = Field(8, ge=1, description="NAS_MAX_STREAMS_PER_USER: live event streams one user "
                                      "may hold open (per API process)")
    max_user_priority: int = Field(0, ge=-100, le=100, description="NAS_MAX_USER_PRIORITY: highest priority a "
                                   "non-admin may ask for (admins: up to 100)")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        return [o.strip() for o in v.split(",") if o.strip()] if isinstance(v, str) else v

    def artifact_store(self) -> ArtifactStore:
        """The data dir's files as the API sees them, mirrored to NAS_STORAGE_URL when it is set."""
        return ArtifactStore(self.storage_url, self.data_dir)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'nas.db').resolve()}"
