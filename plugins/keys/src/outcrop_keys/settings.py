"""The plugin's settings: ``general_settings`` first, then the environment, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass

from outcrop import GatewayAPI

from . import tokens

#: Set by ``outcrop serve --no-migrate`` (an environment variable so ``--workers`` see it too).
NO_MIGRATE_ENV = "OUTCROP_NO_MIGRATE"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    salt_key: str | None
    migrate: bool = True
    store_prompts: bool = False
    spend_logs_for: str = "virtual_keys"
    poll_interval: float = 0.25  # a revoked or changed key is seen by every instance this fast
    flush_interval: float = 0.5  # spend rows are batched for at most this long
    flush_batch_rows: int = 1000
    spend_buffer_rows: int = 100_000  # rows held while the database is unreachable
    shutdown_flush_timeout: float = 10.0

    @classmethod
    def from_gateway(cls, gateway: GatewayAPI) -> Settings:
        from . import db  # SQLAlchemy: only once keys are on (``outcrop --help`` never pays it)

        general = gateway.settings
        return cls(
            database_url=db.database_url(general.database_url, gateway.config_source),
            salt_key=tokens.salt_key(general.salt_key),
            migrate=os.environ.get(NO_MIGRATE_ENV, "") in ("", "0", "false"),
            store_prompts=general.store_prompts_in_spend_logs,
            spend_logs_for=general.spend_logs_for,
        )
