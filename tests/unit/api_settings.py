"""API settings for unit tests that reach no database (pools open empty)."""

from __future__ import annotations

from app.api.config import Settings, load_settings

UNREACHABLE_DSN = "postgresql://u@127.0.0.1:9/db?connect_timeout=1"
BODY_LIMIT = 2048


def unit_settings(**extra: str) -> Settings:
    """Settings of an API instance in delhi whose database is never reached; `extra`
    environment variables on top (e.g. GEOHA_CORS_ORIGINS)."""
    return load_settings(
        {
            "GEOHA_REGION": "delhi",
            "GEOHA_INSTANCE": "delhi-api-2",
            "GEOHA_WRITE_DSN": UNREACHABLE_DSN + "&target_session_attrs=read-write",
            "GEOHA_READ_DSN": UNREACHABLE_DSN,
            "GEOHA_MAX_BODY_BYTES": str(BODY_LIMIT),
            **extra,
        }
    )
