"""API principals and their bearer tokens: random, shown once, kept as SHA-256, expiring, revocable.

A token reads ``iotmon_<id>_<secret>``: ``id`` (12 hex digits) names it in lists
and revocations and finds its row; ``secret`` is 32 random bytes (URL-safe
base64). Only the SHA-256 of the whole token is stored: with 256 random bits a
plain hash cannot be reversed or guessed, so no slow password hash is needed,
and the prefix lets secret scanners spot a leaked token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from iotmon_registry.errors import Conflict, NotFound, RegistryError
from iotmon_registry.registry import Clock, Registry, check_id, utc_now
from iotmon_registry.schema import (
    GuardianRow,
    PrincipalRow,
    PrincipalSiteRow,
    SiteRow,
    TenantRow,
    TokenRow,
)

TOKEN_PREFIX = "iotmon_"  # noqa: S105 - a public prefix, not a secret
_TOKEN = re.compile(r"^iotmon_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


class PrincipalKind(StrEnum):
    OPERATOR = "operator"
    """Everything of one tenant."""
    FACILITY = "facility"
    """Some sites of one tenant: their devices' telemetry and dead letters."""
    GUARDIAN = "guardian"
    """One guardian's children, nothing else."""
    SERVICE = "service"
    """Every tenant, read only: a deployment's own tools and integrations."""


class TokenFailure(StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request speaks for; what it may see follows from kind, tenant, sites, guardian."""

    kind: PrincipalKind
    name: str
    tenant: str | None = None
    sites: frozenset[str] = frozenset()
    guardian: str | None = None
    id: int | None = None
    """Its row; None for a principal that lives outside the registry (a static token)."""
    token_id: str | None = None
    """The token this request came with, when it is a registry token."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never its secret."""

    token_id: str
    principal: Principal
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return TokenFailure.REVOKED.value
        if self.expires_at is not None and self.expires_at <= now:
            return TokenFailure.EXPIRED.value
        return "active"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``token`` is shown once and stored nowhere."""

    token: str
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The principal of a valid token, or why the token is refused."""

    principal: Principal | None
    failure: TokenFailure | None = None
    expired_at: datetime | None = None
    expires_at: datetime | None = None
    """When a valid token expires (None: never), for callers that remember it."""


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id_of(token: str) -> str | None:
    """The id part of a well-formed token, else None."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


class Principals:
    """Create, authenticate, list and revoke tokens in the registry's database."""

    def __init__(self, registry: Registry, *, clock: Clock = utc_now) -> None:
        self._registry = registry
        self._clock = clock

    def create(
        self,
        kind: PrincipalKind,
        *,
        tenant: str | None = None,
        sites: Iterable[str] = (),
        guardian: str | None = None,
        name: str = "",
        expires_in: timedelta | None = None,
    ) -> IssuedToken:
        """A new principal with its first token; refuses a scope that does not fit its kind."""
        site_ids = sorted(set(sites))
        self._check_scope(kind, tenant, site_ids, guardian)
        now = self._clock()
        with self._registry.session() as session:
            if tenant is not None:
                self._require(session, tenant, site_ids, guardian)
            row = PrincipalRow(
                kind=kind.value, name=name, tenant_id=tenant, guardian_id=guardian, created_at=now
            )
            session.add(row)
            session.flush()
            if tenant is not None:
                session.add_all(
                    PrincipalSiteRow(principal_id=row.id, tenant_id=tenant, site_id=site)
                    for site in site_ids
                )
            principal = Principal(kind, name, tenant, frozenset(site_ids), guardian, id=row.id)
            return self._issue(session, row.id, principal, now, expires_in)

    def add_token(self, principal_id: int, *, expires_in: timedelta | None = None) -> IssuedToken:
        """Another token for an existing principal (to rotate without a gap)."""
        now = self._clock()
        with self._registry.session() as session:
            row = session.get(PrincipalRow, principal_id)
            if row is None:
                raise NotFound(f"principal {principal_id} is not registered")
            return self._issue(session, row.id, self._principal(session, row), now, expires_in)

    def authenticate(self, token: str) -> TokenCheck:
        """Who ``token`` speaks for, or why it is refused (unknown, expired, revoked)."""
        token_id = token_id_of(token)
        if token_id is None:
            return TokenCheck(None, TokenFailure.UNKNOWN)
        with self._registry.session() as session:
            row = session.get(TokenRow, token_id)
            # Compared in constant time: the id is public, the hash must not leak by timing.
            if row is None or not hmac.compare_digest(row.secret_sha256, token_sha256(token)):
                return TokenCheck(None, TokenFailure.UNKNOWN)
            if row.revoked_at is not None:
                return TokenCheck(None, TokenFailure.REVOKED)
            if row.expires_at is not None and row.expires_at <= self._clock():
                return TokenCheck(None, TokenFailure.EXPIRED, row.expires_at)
            principal_row = session.get(PrincipalRow, row.principal_id)
            assert principal_row is not None  # a foreign key
            principal = self._principal(session, principal_row)
        return TokenCheck(_with_token(principal, token_id), expires_at=row.expires_at)

    def tokens(self, tenant: str | None = None) -> list[TokenInfo]:
        """Every token (of one tenant's principals), oldest first, revoked and expired too."""
        query = (
            select(TokenRow, PrincipalRow)
            .join(PrincipalRow, PrincipalRow.id == TokenRow.principal_id)
            .order_by(TokenRow.created_at, TokenRow.id)
        )
        if tenant is not None:
            query = query.where(PrincipalRow.tenant_id == tenant)
        with self._registry.session() as session:
            return [
                _info(token, _with_token(self._principal(session, principal), token.id))
                for token, principal in session.execute(query)
            ]

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token from now on; revoking it again keeps the first time."""
        now = self._clock()
        with self._registry.session() as session:
            row = session.get(TokenRow, token_id)
            if row is None:
                raise NotFound(f"token {token_id!r} is not registered (see iotmon tokens list)")
            if row.revoked_at is None:
                row.revoked_at = now
            principal_row = session.get(PrincipalRow, row.principal_id)
            assert principal_row is not None
            return _info(row, _with_token(self._principal(session, principal_row), row.id))

    def any_active(self) -> bool:
        """Whether some token is neither revoked nor expired: someone can use the API."""
        now = self._clock()
        query = (
            select(TokenRow.id)
            .where(TokenRow.revoked_at.is_(None))
            .where(TokenRow.expires_at.is_(None) | (TokenRow.expires_at > now))
            .limit(1)
        )
        with self._registry.session() as session:
            return session.execute(query).first() is not None

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _check_scope(
        kind: PrincipalKind, tenant: str | None, sites: list[str], guardian: str | None
    ) -> None:
        if kind is PrincipalKind.SERVICE:
            if tenant is not None or sites or guardian is not None:
                raise RegistryError(
                    "a service principal reads every tenant: give no tenant, site or guardian"
                )
            return
        if tenant is None:
            raise RegistryError(f"a principal of kind {kind.value} needs a tenant")
        check_id("tenant", tenant)
        if kind is PrincipalKind.FACILITY and not sites:
            raise RegistryError("a facility principal needs at least one site")
        if kind is not PrincipalKind.FACILITY and sites:
            raise RegistryError(f"sites belong to facility principals, not to kind {kind.value}")
        if kind is PrincipalKind.GUARDIAN and guardian is None:
            raise RegistryError("a guardian principal needs a guardian")
        if kind is not PrincipalKind.GUARDIAN and guardian is not None:
            raise RegistryError(
                f"a guardian belongs to guardian principals, not to kind {kind.value}"
            )

    @staticmethod
    def _require(session: Session, tenant: str, sites: list[str], guardian: str | None) -> None:
        if session.get(TenantRow, tenant) is None:
            raise NotFound(f"tenant {tenant!r} is not registered")
        for site in sites:
            if session.get(SiteRow, (tenant, site)) is None:
                raise NotFound(f"tenant {tenant!r}: site {site!r} is not registered")
        if guardian is not None and session.get(GuardianRow, (tenant, guardian)) is None:
            raise NotFound(f"tenant {tenant!r}: guardian {guardian!r} is not registered")

    @staticmethod
    def _principal(session: Session, row: PrincipalRow) -> Principal:
        sites = session.scalars(
            select(PrincipalSiteRow.site_id).where(PrincipalSiteRow.principal_id == row.id)
        )
        return Principal(
            kind=PrincipalKind(row.kind),
            name=row.name,
            tenant=row.tenant_id,
            sites=frozenset(sites),
            guardian=row.guardian_id,
            id=row.id,
        )

    @staticmethod
    def _issue(
        session: Session,
        principal_id: int,
        principal: Principal,
        now: datetime,
        expires_in: timedelta | None,
    ) -> IssuedToken:
        if expires_in is not None and expires_in <= timedelta(0):
            raise RegistryError("a token's lifetime must be positive")
        token_id = secrets.token_hex(6)
        if session.get(TokenRow, token_id) is not None:  # 1 in 2^48: say so, do not overwrite
            raise Conflict("token id collision: try again")
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        row = TokenRow(
            id=token_id,
            principal_id=principal_id,
            secret_sha256=token_sha256(token),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            revoked_at=None,
        )
        session.add(row)
        return IssuedToken(token, _info(row, _with_token(principal, token_id)))


def _with_token(principal: Principal, token_id: str) -> Principal:
    return replace(principal, token_id=token_id)


def _info(row: TokenRow, principal: Principal) -> TokenInfo:
    return TokenInfo(row.id, principal, row.created_at, row.expires_at, row.revoked_at)
