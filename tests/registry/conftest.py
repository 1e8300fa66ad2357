"""Fixtures for the registry's storage drivers: a real S3-compatible server (moto) per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, s3_client, start_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of moto's standalone S3 server, started once per test session."""
    server = start_s3_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3(s3_server: str) -> Any:
    """A raw boto3 client of the test server, for arranging and inspecting objects directly."""
    return s3_client(s3_server)


@pytest.fixture
def s3_settings(settings: Any, s3_server: str, s3: Any) -> Iterator[Any]:
    """DRIVER=s3 against a fresh, uniquely named bucket; yields Django's settings."""
    from registry.storage import get_store

    bucket = f"pm-test-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=bucket)
    settings.DRIVER = "s3"
    settings.S3_BUCKET = bucket
    settings.S3_ENDPOINT = s3_server
    settings.S3_ACCESS_KEY = ACCESS_KEY
    settings.S3_SECRET_KEY = SECRET_KEY
    settings.S3_REGION = REGION
    settings.S3_PREFIX = "prompts/"
    get_store.cache_clear()
    yield settings
    get_store.cache_clear()
