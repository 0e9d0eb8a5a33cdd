"""Fixtures of the API tests that speak Harbor's API through harborapi's own client."""

from __future__ import annotations

import httpx
import pytest
from harborapi import HarborAsyncClient

from tests.support.server import ADMIN_PASSWORD


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def harbor(client):
    """harborapi's own client, speaking to the test application in process, as the administrator."""
    harbor = HarborAsyncClient(url="http://testserver/api/v2.0", username="admin", secret=ADMIN_PASSWORD)
    harbor.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app))
    yield harbor
    await harbor.client.aclose()
