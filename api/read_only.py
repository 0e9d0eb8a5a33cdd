"""A follower answers every write with an error naming its leader (docs/time-travel.md), before
anything is authenticated or read: `/v2/` 403 DENIED, the Harbor API its error shape, the
management API a problem. Signing in (tokens, the UI's session) writes nothing and stays open.
The Registry's own guard (domain/application.py) is the backstop for anything else."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import OciError, error_response
from api.harbor.common import PREFIX as HARBOR_PREFIX
from api.harbor.common import render_harbor_error
from api.management.problems import render_problem

READS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_WRITES = ("/service/token", "/c/login", "/c/log_out")


class FollowerWriteGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS or scope["path"].startswith(OPEN_WRITES):
            return await self.app(scope, receive, send)
        follow = scope["app"].state.services.follow
        following = follow.known()
        if following is None:
            following = await run_in_threadpool(follow.following)
        if not following:
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        refusal = follow.refusal()
        if request.url.path.startswith("/v2"):
            response = error_response(OciError.from_domain(refusal), request.method)
        elif request.url.path.startswith(HARBOR_PREFIX + "/"):
            response = await render_harbor_error(request, refusal)
        else:
            response = await render_problem(request, refusal)
        await response(scope, receive, send)
