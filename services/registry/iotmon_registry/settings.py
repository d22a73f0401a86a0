"""Where the registry lives; nested in each service's settings (``…_REGISTRY__URL``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_URL = "sqlite:///.state/registry.db"


class RegistrySettings(BaseModel):
    """The registry's database: any SQLAlchemy URL, SQLite by default.

    A secret because a server URL carries its password
    (``postgresql+psycopg://iotmon:…@db/iotmon``).
    """

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_URL),
        description="SQLAlchemy database URL; relative SQLite paths are from the working "
        "directory, and their folder is created.",
    )

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except ArgumentError:
            # Never echo the value: it may hold a password.
            raise ValueError(
                "not a SQLAlchemy database URL (e.g. sqlite:///path/registry.db)"
            ) from None
        return value

    def display_url(self) -> str:
        """The URL with any password hidden, for logs and errors."""
        return make_url(self.url.get_secret_value()).render_as_string(hide_password=True)
