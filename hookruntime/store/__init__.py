"""Persistence: tables, engines for SQLite and PostgreSQL, migrations, secret encryption."""

from .crypto import SecretBox
from .engine import Database
from .migrate import migrate, schema_drift

__all__ = ["Database", "SecretBox", "migrate", "schema_drift"]
