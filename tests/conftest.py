"""Shared fixtures: API clients and keys for in-process tests, and a real server for live tests.

The suite runs against whatever database the settings select: SQLite by default, PostgreSQL when
DATABASE_URL is set, with Redis when REDIS_URL is set. Tests that need a service the environment does
not name (say, Redis on a SQLite run) skip when it is unreachable, except under CI=true, where an
unreachable service is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from tenancy.authcache import key_cache
from tenancy.context import Actor
from tenancy.models import ApiKey, Workspace
from tenancy.ratelimit import _limiter
from tests.live_server import service_required

TEST_ACTOR = Actor(api_key_name="pytest")


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts with empty per-process caches (the database is rolled back between tests)."""
    _reset_caches()
    yield
    _reset_caches()


def _reset_caches() -> None:
    from django.conf import settings
    from django.core.cache import cache

    from registry.cache import prompt_cache
    from telemetry.pricing import prices_changed

    key_cache.reset()
    prices_changed()
    _limiter.cache_clear()
    prompt_cache.reset()
    if settings.REDIS_URL:
        # Prompt generations, shared pointers and merged metric histograms outlive the rolled-back
        # rows they describe.
        cache.delete_pattern("prompt-*")
        cache.delete_pattern("metrics-*")
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_prompt_store(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test gets empty Git repositories: the database rolls back between tests, the disk does not."""
    from registry.storage import get_store

    settings.GIT_ROOT = tmp_path_factory.mktemp("git")
    get_store.cache_clear()
    yield
    get_store.cache_clear()


@pytest.fixture
def workspace(db: None) -> Callable[[str], Workspace]:
    def make(workspace_id: str) -> Workspace:
        return Workspace.objects.get_or_create(id=workspace_id, defaults={"name": workspace_id})[0]

    return make


@pytest.fixture
def make_key(db: None) -> Callable[..., tuple[ApiKey, str]]:
    """Mint a key through the service: ``make_key("read,write", workspace="acme")``; None = master."""
    from tenancy.services import api_key_issue

    counter = iter(range(1, 10_000))

    def make(
        scopes: str = "read,write",
        *,
        workspace: str | None = "default",
        name: str | None = None,
        expires_at: Any = None,
    ) -> tuple[ApiKey, str]:
        ws = None
        if workspace is not None:
            ws = Workspace.objects.get_or_create(id=workspace, defaults={"name": workspace})[0]
        return api_key_issue(
            name=name or f"key-{next(counter)}",
            scopes=scopes,
            workspace=ws,
            expires_at=expires_at,
            actor=TEST_ACTOR,
        )

    return make


@pytest.fixture
def admin(make_key: Callable[..., tuple[ApiKey, str]]) -> tuple[ApiKey, str]:
    """An admin key of workspace ``default``: (ApiKey, plaintext)."""
    return make_key("read,write,admin", name="ws-admin")


@pytest.fixture
def master(make_key: Callable[..., tuple[ApiKey, str]]) -> tuple[ApiKey, str]:
    """A master key (workspace ``*``): (ApiKey, plaintext)."""
    return make_key("read,write,admin", workspace=None, name="root")


class Api:
    """A thin JSON client: ``api.get("/v1/api-keys", key=k, workspace="acme")``."""

    def __init__(self) -> None:
        self.client = APIClient()

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        workspace: str | None = None,
        json: Any = None,
        data: str | bytes | None = None,
        content_type: str = "application/json",
        **extra: Any,
    ) -> Any:
        headers = dict(extra)
        if key is not None:
            headers["HTTP_X_API_KEY"] = key
        if workspace is not None:
            headers["HTTP_X_WORKSPACE_ID"] = workspace
        if json is not None:
            import json as jsonlib

            data = jsonlib.dumps(json)
        return self.client.generic(method, path, data=data or "", content_type=content_type, **headers)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(db: None) -> Api:
    return Api()


@pytest.fixture
def redis_url() -> str:
    """A Redis to test against: REDIS_URL, else the local one; skipped only outside CI."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    service_required("redis", url)
    return url


@pytest.fixture
def live_servers(tmp_path: Any) -> Iterator[Any]:
    """Start real ``promptmetrics-server`` processes: ``live_servers.start(env={...})``."""
    from tests.live_server import ServerFactory

    if os.environ.get("DATABASE_URL"):
        service_required("postgres", os.environ["DATABASE_URL"])
    factory = ServerFactory(tmp_path)
    yield factory
    factory.close()
