"""POST /service/token — the OAuth2 grants of the Docker token specification (its OAuth2
section, after RFC 6749), as containerd and other clients ask for tokens.

The form (application/x-www-form-urlencoded): `grant_type` `password` (with `username` and
`password`) or `refresh_token` (with `refresh_token`), `service`, `client_id`, `scope` (space
separated, or repeated) and `access_type=offline` for a refresh token. The answer is the GET
answer (api/token_service.py) plus `refresh_token` when one was asked for, or exchanged (the
same one, never a new one). Errors are RFC 6749's JSON, `{"error", "error_description"}`: 400
for a bad request or grant, 429 with Retry-After while the address is locked out of the account.

Refresh tokens are signed for their own audience, so they are never access or session tokens;
they name the account and a digest of its password (or robot secret) and end when that changes,
when the account is deleted, or when a robot is disabled or expires.

The form is parsed here, read up to MAX_FORM_BYTES: python-multipart would bring a multipart
parser that this endpoint has no use for, and a dependency to keep patched."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.authn import client_address
from api.request_input import InputError
from api.token_service import refresh_token_for, token_body, token_response
from api.tokens import SERVICE, InvalidTokenError
from domain.errors import AuthenticationError, TooManyAttemptsError
from domain.permissions import Principal

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 64
GRANT_TYPES = ("password", "refresh_token")


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.error, self.description, self.status, self.headers = error, description, status, headers

    def response(self) -> Response:
        return token_response({"error": self.error, "error_description": self.description},
                              self.status, self.headers)


async def post_token(request: Request) -> Response:
    try:
        form = await _form(request)
        return await run_in_threadpool(_grant, request, form)
    except OAuthError as error:
        return error.response()


async def _form(request: Request) -> dict[str, list[str]]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise OAuthError("invalid_request", f"the request body must be {FORM_TYPE}")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise OAuthError("invalid_request", f"the form is larger than {MAX_FORM_BYTES} bytes", 413)
    except InputError as error:  # past the server's body limits (size, or a stalled body)
        raise OAuthError("invalid_request", error.message, error.status) from None
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the form is not valid UTF-8 url-encoding") from None


def _grant(request: Request, form: dict[str, list[str]]) -> Response:
    services = request.app.state.services
    grant_type = _field(form, "grant_type")
    if grant_type not in GRANT_TYPES:
        raise OAuthError("unsupported_grant_type", f"grant_type must be one of {', '.join(GRANT_TYPES)}")
    if _field(form, "service") != SERVICE:
        raise OAuthError("invalid_request", f"service must be {SERVICE}")
    client_id = _field(form, "client_id")
    if grant_type == "password":
        principal = _password_login(services, request, _field(form, "username"), _field(form, "password"))
        offline = form.get("access_type", [""])[0] == "offline"
        refresh = refresh_token_for(services, principal, client_id) if offline else None
    else:
        refresh = _field(form, "refresh_token")
        principal = _refreshed(services, refresh)
    body = token_body(services, principal, form.get("scope", []))
    return token_response(body | ({"refresh_token": refresh} if refresh else {}))


def _field(form: dict[str, list[str]], name: str) -> str:
    value = form.get(name, [""])[0]
    if not value:
        raise OAuthError("invalid_request", f"{name} is required")
    return value


def _password_login(services, request: Request, username: str, password: str) -> Principal:
    try:
        return services.authenticator.login(username, password, source=client_address(request))
    except AuthenticationError as error:
        raise OAuthError("invalid_grant", error.message) from None
    except TooManyAttemptsError as error:
        raise OAuthError("temporarily_unavailable", error.message, 429,
                         {"Retry-After": str(int(error.retry_after))}) from None


def _refreshed(services, refresh_token: str) -> Principal:
    """The account a refresh token was issued to, while the token still stands for it."""
    try:
        claims = services.tokens.verify_refresh(refresh_token)
    except InvalidTokenError:
        raise OAuthError("invalid_grant", "the refresh token is not valid, has expired or was revoked") from None
    name = claims["sub"]
    principal = services.authenticator.principal_named(name)
    credential = services.authenticator.credential(name)
    if principal is None or credential is None \
            or not hmac.compare_digest(str(claims.get("credential", "")), credential):
        raise OAuthError("invalid_grant", "the refresh token has ended: its account, password or secret changed")
    return principal
