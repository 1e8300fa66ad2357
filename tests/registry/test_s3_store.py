"""The s3 prompt store against a real S3-compatible server (moto's standalone server over HTTP)."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import unquote

import pytest

from registry.drivers.s3 import S3Store
from registry.storage import StoredContent, StoredDifferently, StoredVersion, StoreError, get_store
from tests.live_server import free_port

DOC = b'{"name": "greet", "version": "1.0.0", "messages": [{"role": "user", "content": "Hi {{who}}"}]}'


@pytest.fixture
def store(s3_settings: Any) -> S3Store:
    made = get_store()
    assert isinstance(made, S3Store)
    return made


def put(store: S3Store, content: bytes = DOC, **where: str) -> StoredVersion:
    args = {"workspace_id": "default", "name": "greet", "version": "1.0.0", **where}
    return store.put(**args, content=content, author="alice")


def test_the_s3_driver_is_selected_by_settings(store, s3_settings, s3_server):
    assert store.driver == "s3"
    assert store.describe() == {
        "driver": "s3",
        "location": f"s3://{s3_settings.S3_BUCKET}/prompts/",
        "endpoint": s3_server,
        "region": "us-east-1",
    }
    assert "testing" not in repr(store.describe())


def test_put_then_get_round_trips_under_the_workspace_key(store, s3, s3_settings):
    assert put(store) == StoredVersion()

    assert store.get(workspace_id="default", name="greet", version="1.0.0") == StoredContent(
        DOC, StoredVersion()
    )
    listed = s3.list_objects_v2(Bucket=s3_settings.S3_BUCKET)
    assert [obj["Key"] for obj in listed["Contents"]] == ["prompts/default/greet/1.0.0.json"]
    head = s3.head_object(Bucket=s3_settings.S3_BUCKET, Key="prompts/default/greet/1.0.0.json")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"author": "alice"}


def test_a_non_ascii_author_is_kept_percent_encoded(store, s3, s3_settings):
    store.put(workspace_id="default", name="greet", version="1", content=DOC, author="José 100% <j@x>")

    head = s3.head_object(Bucket=s3_settings.S3_BUCKET, Key="prompts/default/greet/1.json")
    assert unquote(head["Metadata"]["author"]) == "José 100% <j@x>"


def test_the_prefix_setting_is_the_start_of_every_key(s3_settings, s3):
    s3_settings.S3_PREFIX = "team-a/prompt-docs/"
    get_store.cache_clear()
    put(get_store())

    listed = s3.list_objects_v2(Bucket=s3_settings.S3_BUCKET)
    assert [obj["Key"] for obj in listed["Contents"]] == ["team-a/prompt-docs/default/greet/1.0.0.json"]


def test_storing_the_same_bytes_again_is_idempotent(store, s3, s3_settings):
    put(store)
    assert put(store) == StoredVersion()
    assert store.get(workspace_id="default", name="greet", version="1.0.0").content == DOC
    assert s3.list_objects_v2(Bucket=s3_settings.S3_BUCKET)["KeyCount"] == 1


def test_other_bytes_for_a_stored_version_are_refused_and_the_object_kept(store, s3, s3_settings):
    put(store)
    key = "prompts/default/greet/1.0.0.json"
    etag = s3.head_object(Bucket=s3_settings.S3_BUCKET, Key=key)["ETag"]

    with pytest.raises(StoredDifferently):
        store.put(workspace_id="default", name="greet", version="1.0.0", content=b"{}", author="mallory")

    head = s3.head_object(Bucket=s3_settings.S3_BUCKET, Key=key)
    assert head["ETag"] == etag
    assert head["Metadata"] == {"author": "alice"}
    assert s3.get_object(Bucket=s3_settings.S3_BUCKET, Key=key)["Body"].read() == DOC


def test_concurrent_writers_of_one_version_never_overwrite_each_other(store):
    outcomes: dict[int, str] = {}
    start = threading.Barrier(6)

    def write(i: int) -> None:
        start.wait()
        try:
            put(store, content=b'{"writer": %d}' % i)
            outcomes[i] = "stored"
        except StoredDifferently:
            outcomes[i] = "refused"

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [i for i, outcome in outcomes.items() if outcome == "stored"]
    assert len(outcomes) == 6 and len(winners) == 1
    stored = store.get(workspace_id="default", name="greet", version="1.0.0")
    assert stored is not None and stored.content == b'{"writer": %d}' % winners[0]


def test_two_workspaces_store_the_same_name_and_version_apart(store, s3, s3_settings):
    put(store, workspace_id="acme")
    put(store, content=b'{"other": true}', workspace_id="globex")

    listed = s3.list_objects_v2(Bucket=s3_settings.S3_BUCKET)
    assert sorted(obj["Key"] for obj in listed["Contents"]) == [
        "prompts/acme/greet/1.0.0.json",
        "prompts/globex/greet/1.0.0.json",
    ]
    assert store.get(workspace_id="acme", name="greet", version="1.0.0").content == DOC
    assert store.get(workspace_id="globex", name="greet", version="1.0.0").content == b'{"other": true}'
    assert store.get(workspace_id="default", name="greet", version="1.0.0") is None


@pytest.mark.parametrize(
    "where",
    [
        {"workspace_id": "../other"},
        {"workspace_id": "a/b"},
        {"workspace_id": ""},
        {"name": "../../default/greet"},
        {"name": "a\\b"},
        {"name": ".."},
        {"version": "1/../../x"},
        {"version": "1..2"},
        {"version": ""},
    ],
)
def test_path_traversal_is_refused(store, s3, s3_settings, where):
    args = {"workspace_id": "default", "name": "greet", "version": "1.0.0", **where}
    with pytest.raises(ValueError):
        store.put(**args, content=DOC, author="alice")
    with pytest.raises(ValueError):
        store.get(**args)
    assert s3.list_objects_v2(Bucket=s3_settings.S3_BUCKET)["KeyCount"] == 0


def test_versions_refuses_a_traversing_workspace(store):
    with pytest.raises(ValueError):
        store.versions("../default")


def test_an_unknown_version_is_none(store):
    put(store)
    assert store.get(workspace_id="default", name="greet", version="9.9.9") is None
    assert store.get(workspace_id="default", name="other", version="1.0.0") is None


def test_versions_lists_one_workspace_across_every_page(store, s3, s3_settings):
    expected = [(f"p{i}", f"1.0.{j}") for i in range(3) for j in range(3)]
    for name, version in expected:
        put(store, name=name, version=version)
    put(store, workspace_id="default-2")
    put(store, workspace_id="acme")
    for stray in ["prompts/default/README.md", "prompts/default/p0/nested/1.json", "prompts/default/x.json"]:
        s3.put_object(Bucket=s3_settings.S3_BUCKET, Key=stray, Body=b"{}")
    requests: list[str] = []
    store._client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda **kwargs: requests.append(kwargs["model"].name)
    )

    assert sorted(store.versions("default", page_size=2)) == expected
    assert len(requests) >= 6  # 12 keys under the workspace, 2 per page: continuation tokens followed
    assert store.versions("acme") == [("greet", "1.0.0")]
    assert store.versions("nobody") == []


def test_healthy_when_the_bucket_answers(store):
    assert store.healthy() is True


def test_unhealthy_when_the_bucket_is_missing(s3_settings):
    s3_settings.S3_BUCKET = "pm-test-no-such-bucket"
    get_store.cache_clear()
    assert get_store().healthy() is False


def test_a_missing_bucket_is_a_store_error(s3_settings):
    s3_settings.S3_BUCKET = "pm-test-no-such-bucket"
    get_store.cache_clear()
    store = get_store()
    with pytest.raises(StoreError):
        put(store)
    with pytest.raises(StoreError):
        store.get(workspace_id="default", name="greet", version="1.0.0")
    with pytest.raises(StoreError):
        store.versions("default")


@pytest.fixture
def dead_store(s3_settings: Any) -> S3Store:
    s3_settings.S3_ENDPOINT = f"http://127.0.0.1:{free_port()}"
    get_store.cache_clear()
    made = get_store()
    assert isinstance(made, S3Store)
    return made


def test_unhealthy_when_the_endpoint_is_down(dead_store):
    started = time.monotonic()
    assert dead_store.healthy() is False
    assert time.monotonic() - started < 3


def test_a_dead_endpoint_fails_promptly_with_a_store_error(dead_store):
    started = time.monotonic()
    with pytest.raises(StoreError):
        put(dead_store)
    with pytest.raises(StoreError):
        dead_store.get(workspace_id="default", name="greet", version="1.0.0")
    with pytest.raises(StoreError):
        dead_store.versions("default")
    assert time.monotonic() - started < 10


def test_storage_healthy_reports_the_s3_store(s3_settings):
    from registry.storage import storage_healthy

    assert storage_healthy() is True
    s3_settings.S3_BUCKET = "pm-test-no-such-bucket"
    get_store.cache_clear()
    assert storage_healthy() is False
