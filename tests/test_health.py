"""``/health`` and ``/health/deep``: unauthenticated, JSON, 503 when a dependency fails."""

from __future__ import annotations

import pytest


def test_health_is_ok_without_a_key(api):
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_deep_health_checks_the_database_and_the_prompt_store(api, settings, tmp_path):
    settings.GIT_ROOT = tmp_path / "git"
    body = api.get("/health/deep").json()
    assert body["status"] == "ok"
    assert body["checks"]["sqlite"] == "ok"
    assert body["checks"]["driver"] == "ok"
    assert body["dbConnected"] is True
    assert body["dbType"] in {"sqlite", "postgresql"}
    assert body["driverType"] == "git"
    assert (tmp_path / "git").is_dir()


def test_an_unwritable_prompt_store_degrades_deep_health(api, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.GIT_ROOT = blocker / "git"
    response = api.get("/health/deep")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["driver"] == "error"


def test_a_failing_database_degrades_deep_health(api, monkeypatch):
    class GoneDatabase:
        vendor = "postgresql"

        def cursor(self):
            raise RuntimeError("database is gone")

    monkeypatch.setattr("config.health.connection", GoneDatabase())
    response = api.get("/health/deep")
    assert response.status_code == 503
    assert response.json()["checks"]["sqlite"] == "error"
    assert response.json()["dbConnected"] is False


def test_deep_health_checks_redis_when_configured(api, settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url}}
    response = api.get("/health/deep")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["redis"] == "ok"


def test_an_unreachable_redis_degrades_deep_health(api, settings):
    unreachable = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = unreachable
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": unreachable,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    response = api.get("/health/deep")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "error"


@pytest.mark.parametrize("path", ["/health", "/health/deep"])
def test_health_is_never_rate_limited_nor_needs_a_key(api, settings, path):
    settings.RATE_LIMIT_MAX_REQUESTS = 1
    assert all(api.get(path).status_code in (200, 503) for _ in range(3))
    assert "RateLimit-Limit" not in api.get(path)
