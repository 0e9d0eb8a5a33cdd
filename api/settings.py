"""Run-time settings: command-line flags win over PORTLOG_* environment variables,
which win over the embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = Path("./data")
    access_log: bool = True
    admin_password: str | None = None
    token_lifetime_seconds: int = 300
    workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        environ = os.environ if environ is None else environ
        settings = cls(
            host=environ.get("PORTLOG_HOST", cls.host),
            port=int(environ.get("PORTLOG_PORT", cls.port)),
            data_dir=Path(environ.get("PORTLOG_DATA_DIR", cls.data_dir)),
            admin_password=environ.get("PORTLOG_ADMIN_PASSWORD") or None,
            workers=int(environ.get("PORTLOG_WORKERS", cls.workers)),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def as_environment(self) -> dict[str, str]:
        """The variables that make `from_env` give these settings back (for worker processes)."""
        env = {"PORTLOG_HOST": self.host, "PORTLOG_PORT": str(self.port),
               "PORTLOG_DATA_DIR": str(self.data_dir), "PORTLOG_WORKERS": str(self.workers)}
        if self.admin_password:
            env["PORTLOG_ADMIN_PASSWORD"] = self.admin_password
        return env

    @property
    def event_store_env(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.data_dir / "events.db"),
            "SQLITE_LOCK_TIMEOUT": "30",
            "AGGREGATE_CACHE_MAXSIZE": "1000",
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }

    @property
    def read_model_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'readmodels.db'}"

    @property
    def signing_keys_path(self) -> Path:
        return self.data_dir / "token-keys.json"

    @property
    def blob_root(self) -> Path:
        return self.data_dir / "storage"
