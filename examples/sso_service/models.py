"""The service's own table (``sso_accounts``, beside hookruntime's in one database)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def host_url(database_url: str) -> str:
    """hookruntime's database URL spelled for SQLAlchemy's async drivers."""
    if database_url.startswith("sqlite:"):
        return database_url.replace("sqlite:", "sqlite+aiosqlite:", 1)
    return database_url.replace("postgresql:", "postgresql+asyncpg:", 1)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "sso_accounts"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    # The provider's issuer and subject: the one identity that stays put.
    subject: Mapped[str] = mapped_column(String, unique=True)
    email: Mapped[str] = mapped_column(String, default="")
    first_name: Mapped[str] = mapped_column(String, default="")
    last_name: Mapped[str] = mapped_column(String, default="")
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @classmethod
    def new(cls, subject: str) -> Account:
        return cls(id=f"usr_{uuid.uuid4().hex[:12]}", subject=subject)

    def profile(self) -> dict[str, Any]:
        """The account as ``profile_updated`` carries it (plugins/identity)."""
        return {
            "id": self.id,
            "rev": str(self.version),
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
        }

    def take(self, claims: dict[str, Any]) -> bool:
        """Copy the profile fields of ``claims``; whether anything changed."""
        before = (self.email, self.first_name, self.last_name)
        self.email = claims.get("email", self.email)
        self.first_name = claims.get("firstName", self.first_name)
        self.last_name = claims.get("lastName", self.last_name)
        return (self.email, self.first_name, self.last_name) != before
