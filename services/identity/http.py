"""The identity service's HTTP API: citizens, the token issuer, agencies and operators.

Each route parses the request, runs one use case with the service's storage and
dependencies, and shapes the response. Domain errors are not caught here: `shared.http`
turns each into its problem document.
"""

from __future__ import annotations

import base64
import hmac
import json
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from services.identity.adapters.hashing import HashingGate
from services.identity.adapters.key_ring import KeyRing
from services.identity.domain.citizens import Calendar
from services.identity.domain.networks import Network
from services.identity.domain.networks import client_address as resolve_client
from services.identity.domain.tokens import AGENCY_SCOPES
from services.identity.storage import IdentityStatements, IdentityStorage, statements
from services.identity.use_cases import agencies, citizens, tokens
from services.identity.use_cases.ports import Dependencies
from shared.auth import InvalidToken, Principal, bearer
from shared.db import Connection, Pool
from shared.errors import DomainError
from shared.http import ProblemError
from shared.jalali import jalali_moment
from shared.operational_metrics import SIGN_INS
from shared.reference.provinces import ProvinceCode
from shared.runtime import context_of
from shared.sealing import Sealer
from shared.unit_of_work import transaction
from shared.vocabulary import AuthenticationChannel

router = APIRouter()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IdentityContext:
    """What routes work with, made once when the service starts (`bootstrap.context`)."""

    pool: Pool
    sealer: Sealer
    keys: KeyRing
    deps: Dependencies
    # Client-credential checks hash (argon2, 64 MiB each): at most this many at once.
    hashing: HashingGate
    # The platform's own reverse proxies, whose X-Forwarded-For is believed.
    proxies: tuple[Network, ...] = ()

    def statements(self) -> AbstractAsyncContextManager[IdentityStatements]:
        """Storage outside a transaction, for one use case (`use_cases.ports.Statements`)."""
        return statements(self.pool, self.sealer)

    def transaction(self) -> AbstractAsyncContextManager[IdentityStorage]:
        """A unit of work in a new transaction (`use_cases.ports.IdentityWork`)."""
        return transaction(self.pool, self._unit_of_work)

    def _unit_of_work(self, connection: Connection) -> IdentityStorage:
        return IdentityStorage(connection, self.sealer)


async def identity_of(request: Request) -> IdentityContext:
    # Async, as every dependency here: FastAPI runs plain functions in a thread pool.
    return context_of(request, IdentityContext)


IdentityDep = Annotated[IdentityContext, Depends(identity_of)]


def client_address(request: Request, identity: IdentityContext) -> str:
    """The client's address: the peer, or what our trusted proxies say the client was."""
    peer = request.client.host if request.client else "unknown"
    return resolve_client(peer, request.headers.get("x-forwarded-for"), identity.proxies)


async def citizen_principal(request: Request, identity: IdentityDep) -> Principal:
    """The citizen a bearer token speaks for, whose session is still open."""
    try:
        principal = await identity.keys.verify(bearer(request), utc_now())
    except InvalidToken as error:
        raise ProblemError(401, "unauthenticated", str(error)) from None
    session = principal.claims.get("sid")
    if principal.level_of_assurance is None or not isinstance(session, str):
        raise ProblemError(403, "not_a_citizen_token", "this needs a citizen's token")
    async with identity.statements() as work:
        active = await tokens.session_active(work, session)
    if not active:
        raise ProblemError(401, "unauthenticated", "the session was revoked")
    return principal


async def agency_principal(request: Request, identity: IdentityDep) -> Principal:
    try:
        principal = await identity.keys.verify(bearer(request), utc_now())
    except InvalidToken as error:
        raise ProblemError(401, "unauthenticated", str(error)) from None
    if principal.agency is None:
        raise ProblemError(403, "not_an_agency_token", "this needs an agency system's token")
    return principal


async def operator(request: Request, identity: IdentityDep) -> None:
    """Platform operators authenticate with the operator bearer secret."""
    expected = identity.deps.settings.operator_token.get_secret_value().encode()
    if not hmac.compare_digest(bearer(request).encode(), expected):
        raise ProblemError(401, "unauthenticated", "the operator secret is wrong")


# Discovery -----------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration", tags=["issuer"])
async def discovery(identity: IdentityDep) -> dict[str, Any]:
    """The issuer's discovery document (OpenID Connect Discovery 1.0 style)."""
    base = identity.deps.settings.issuer.rstrip("/")
    return {
        "issuer": identity.deps.settings.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "acr_values_supported": ["loa1", "loa2", "loa3"],
        "claims_supported": [
            "iss",
            "aud",
            "sub",
            "exp",
            "iat",
            "nbf",
            "jti",
            "loa",
            "acr",
            "amr",
            "sid",
            "agency",
            "scope",
        ],
        "scopes_supported": sorted(AGENCY_SCOPES),
        "x_citizen_sign_in": {
            "code_endpoint": f"{base}/citizens/sign-in/code",
            "sign_in_endpoint": f"{base}/citizens/sign-in",
        },
    }


@router.get("/.well-known/jwks.json", tags=["issuer"])
async def jwks(identity: IdentityDep) -> JSONResponse:
    """Every public key that may verify a token now, including the next key to sign."""
    return JSONResponse(
        await identity.keys.jwks(utc_now()), headers={"cache-control": "public, max-age=60"}
    )


# Citizens ------------------------------------------------------------------------------


class RegistrationIn(BaseModel):
    national_id: str = Field(
        max_length=40, description="کد ملی; Persian digits, spaces, dashes ok."
    )
    mobile: str = Field(max_length=40, examples=["09121234567"])
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    birth_date: str = Field(max_length=20, examples=["1370/01/15", "1991-04-04"])
    calendar: Calendar | None = Field(default=None, description="Guessed from the year if absent.")
    province: ProvinceCode


class RegisteredOut(BaseModel):
    citizen: str = Field(description="The pseudonymous id.")


@router.post("/citizens", status_code=201, tags=["citizens"], response_model=RegisteredOut)
async def register(form: RegistrationIn, request: Request, identity: IdentityDep) -> RegisteredOut:
    """Register a citizen; the operator check must say the mobile is theirs. A national ID
    registered already is answered the same (so nobody learns who is registered)."""
    async with identity.statements() as work:
        citizen = await citizens.register(
            work,
            identity.deps,
            citizens.Registration(**form.model_dump()),
            client_address(request, identity),
            utc_now(),
        )
    return RegisteredOut(citizen=citizen)


class CodeRequestIn(BaseModel):
    national_id: str = Field(max_length=40)


class CodeSentOut(BaseModel):
    sent_to: str = Field(description="The mobile the code went to, masked.")
    expires_at: AwareDatetime
    expires_at_jalali: str


@router.post("/citizens/sign-in/code", status_code=202, tags=["citizens"])
async def request_code(form: CodeRequestIn, request: Request, identity: IdentityDep) -> CodeSentOut:
    """Send a one-time sign-in code by SMS to the citizen's registered mobile."""
    async with identity.statements() as work:
        sent = await citizens.request_code(
            work, identity.deps, form.national_id, client_address(request, identity), utc_now()
        )
    return CodeSentOut(
        sent_to=sent.sent_to,
        expires_at=sent.expires_at,
        expires_at_jalali=jalali_moment(sent.expires_at),
    )


class SignInIn(BaseModel):
    national_id: str = Field(max_length=40)
    code: str = Field(max_length=20)
    channel: AuthenticationChannel = "web"


@router.post("/citizens/sign-in", tags=["citizens"])
async def sign_in(form: SignInIn, request: Request, identity: IdentityDep) -> JSONResponse:
    """Sign in with the one-time code: an access token (loa 2) and a refresh token."""
    try:
        async with identity.statements() as work:
            response = await citizens.sign_in(
                work,
                identity.deps,
                national_id_text=form.national_id,
                code_text=form.code,
                channel=form.channel,
                client_address=client_address(request, identity),
                user_agent=request.headers.get("user-agent"),
                now=utc_now(),
            )
    except DomainError as refusal:
        SIGN_INS.labels(refusal.code).inc()
        raise
    SIGN_INS.labels("signed_in").inc()
    return JSONResponse(response.as_json(), headers={"cache-control": "no-store"})


class SignInOut(BaseModel):
    at: AwareDatetime
    at_jalali: str
    client_address: str
    channel: str
    user_agent: str | None
    outcome: Literal["succeeded", "failed", "locked_out"]
    reason: str | None


@router.get("/citizens/me/sign-ins", tags=["citizens"])
async def my_sign_ins(
    identity: IdentityDep,
    principal: Annotated[Principal, Depends(citizen_principal)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[SignInOut]:
    """The signed-in citizen's own sign-ins and failed attempts, newest first."""
    async with identity.statements() as work:
        rows = await citizens.sign_in_history(work, principal.subject, limit)
    return [SignInOut(**row, at_jalali=jalali_moment(row["at"])) for row in rows]


# OAuth ---------------------------------------------------------------------------------

_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "grant_type": {"enum": ["client_credentials", "refresh_token"]},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                        "scope": {"type": "string"},
                        "refresh_token": {"type": "string"},
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                    },
                }
            }
        },
    }
}


async def _form(request: Request) -> dict[str, str]:
    """The request's parameters, form-encoded (OAuth's way) or JSON."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("a JSON object is needed")
            return {str(k): str(v) for k, v in data.items() if v is not None}
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=False))
    except (ValueError, UnicodeDecodeError) as error:
        raise ProblemError(400, "invalid_request", f"unreadable body: {error}") from None


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ProblemError(401, "invalid_client", "unreadable Basic credentials") from None
    return client_id, secret


@router.post("/oauth/token", tags=["issuer"], openapi_extra=_FORM_BODY)
async def token(request: Request, identity: IdentityDep) -> JSONResponse:
    """The token endpoint (RFC 6749): `client_credentials` for agency systems,
    `refresh_token` for citizens' sessions (the refresh token rotates on every use)."""
    form = await _form(request)
    grant = form.get("grant_type")
    now = utc_now()
    if grant == "client_credentials":
        credentials = _basic_credentials(request) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if not credentials[0] or not credentials[1]:
            raise ProblemError(401, "invalid_client", "client_id and client_secret are needed")
        async with identity.hashing.admitted(), identity.statements() as work:
            response = await tokens.client_credentials(
                work,
                identity.deps,
                client_id=credentials[0],
                client_secret=credentials[1],
                scope=form.get("scope"),
                now=now,
            )
    elif grant == "refresh_token":
        presented = form.get("refresh_token")
        if not presented:
            raise ProblemError(400, "invalid_request", "refresh_token is needed")
        async with identity.statements() as work:
            response = await tokens.refresh(work, identity.deps, presented, now)
    else:
        raise ProblemError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
    return JSONResponse(response.as_json(), headers={"cache-control": "no-store"})


@router.post("/oauth/revoke", tags=["issuer"], openapi_extra=_FORM_BODY, response_class=Response)
async def revoke(request: Request, identity: IdentityDep) -> Response:
    """Revocation (RFC 7009): ends the session of a refresh or access token; always 200."""
    form = await _form(request)
    presented = form.get("token")
    if not presented:
        raise ProblemError(400, "invalid_request", "token is needed")
    async with identity.statements() as work:
        await tokens.revoke(work, identity.deps, presented, utc_now())
    return Response(status_code=200)


# Agencies: their signing keys -----------------------------------------------------------


class AgencyKeyIn(BaseModel):
    jwk: dict[str, Any] = Field(description="The public key (JWK). ES256 preferred.")
    kid: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$"
    )
    not_before: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    replaces: str | None = Field(default=None, description="A key of yours this one rotates out.")


@router.post("/agency-keys", status_code=201, tags=["agencies"])
async def register_agency_key(
    form: AgencyKeyIn,
    identity: IdentityDep,
    principal: Annotated[Principal, Depends(agency_principal)],
) -> dict[str, Any]:
    """Register a public key the agency's systems sign with (needs `identity:agency-keys`);
    published on `identity.agency-keys`."""
    async with identity.statements() as work:
        published = await agencies.register_key(
            work, agencies.KeyRequest(**form.model_dump()), keeper=principal, now=utc_now()
        )
    return published.model_dump(mode="json")


@router.get("/agency-keys", tags=["agencies"])
async def list_agency_keys(
    identity: IdentityDep, principal: Annotated[Principal, Depends(agency_principal)]
) -> list[dict[str, Any]]:
    assert principal.agency is not None
    async with identity.statements() as work:
        rows = await agencies.keys_of(work, principal.agency)
    return [_jsonable(row) for row in rows]


class RevocationIn(BaseModel):
    reason: str = Field(default="revoked by the agency", min_length=1, max_length=200)


@router.post("/agency-keys/{kid}/revoke", status_code=204, tags=["agencies"])
async def revoke_agency_key(
    kid: str,
    identity: IdentityDep,
    principal: Annotated[Principal, Depends(agency_principal)],
    form: RevocationIn | None = None,
) -> Response:
    """Revoke one of the agency's keys (needs `identity:agency-keys`); published as
    `AgencyKeyRevoked`."""
    reason = form.reason if form else "revoked by the agency"
    async with identity.transaction() as unit:
        await agencies.revoke_own_key(unit, principal, kid, reason, utc_now())
    return Response(status_code=204)


# Operators -----------------------------------------------------------------------------


class ClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=10)


@router.post(
    "/operator/agencies/{agency}/clients",
    status_code=201,
    tags=["operators"],
    dependencies=[Depends(operator)],
)
async def create_client(agency: str, form: ClientIn, identity: IdentityDep) -> JSONResponse:
    """New client credentials for an agency's system. The secret is shown this once."""
    async with identity.statements() as work:
        created = await agencies.create_client(
            work, identity.deps, agency=agency, name=form.name, scopes=form.scopes, now=utc_now()
        )
    return JSONResponse(
        {
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "agency": created.agency,
            "scopes": created.scopes,
        },
        status_code=201,
        headers={"cache-control": "no-store"},
    )


@router.get(
    "/operator/agencies/{agency}/clients", tags=["operators"], dependencies=[Depends(operator)]
)
async def list_clients(agency: str, identity: IdentityDep) -> list[dict[str, Any]]:
    async with identity.statements() as work:
        rows = await agencies.clients(work, agency)
    return [_jsonable(row) for row in rows]


@router.delete(
    "/operator/agencies/{agency}/clients/{client_id}",
    status_code=204,
    tags=["operators"],
    dependencies=[Depends(operator)],
)
async def revoke_client(agency: str, client_id: str, identity: IdentityDep) -> Response:
    async with identity.transaction() as unit:
        await agencies.revoke_client(unit, agency, client_id, utc_now())
    return Response(status_code=204)


@router.post("/operator/issuer-keys/rotate", tags=["operators"], dependencies=[Depends(operator)])
async def rotate_issuer_key(identity: IdentityDep) -> dict[str, Any]:
    """Publish a new signing key now; it signs after the publish-ahead delay."""
    kid = await identity.keys.rotate(utc_now(), force=True)
    return {"kid": kid}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
