"""GET /v2/ : API version check (200, `Docker-Distribution-API-Version: registry/2.0`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response


async def get_base(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")
