"""The prompt cache: a warm GET touches neither the database nor the store, and writes show at once.

Upstream §6.3 (a second identical GET does not touch the driver; a create makes the next "latest" GET
return the new version) plus ours: label moves are visible on the very next request (no 60 s TTL).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.cache import prompt_cache
from registry.models import PromptVersion
from registry.storage import get_store

PROMPTS = "/v1/prompts"


@pytest.fixture
def key(make_key):
    return make_key("read,write")[1]


@pytest.fixture
def store_reads(monkeypatch):
    """Count reads of the prompt store (the driver); a GET must be served without them."""
    store = get_store()
    calls: list[tuple[str, str, str]] = []
    real_get = store.get

    def counting_get(*, workspace_id, name, version):
        calls.append((workspace_id, name, version))
        return real_get(workspace_id=workspace_id, name=name, version=version)

    monkeypatch.setattr(store, "get", counting_get)
    return calls


def create(api, key, version, name="welcome", text=None):
    body = {
        "name": name,
        "version": version,
        "messages": [{"role": "user", "content": text or f"v{version}"}],
    }
    response = api.post(PROMPTS, key=key, json=body)
    assert response.status_code == 201, response.content


def get(api, key, query="", name="welcome"):
    response = api.get(f"{PROMPTS}/{name}{query}", key=key)
    assert response.status_code == 200, response.content
    return response.json()


def registry_queries(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if "registry_" in q["sql"]]


@pytest.mark.parametrize("query", ["", "?version=1.0.0", "?label=production", "?variables[name]=A"])
def test_a_repeated_get_runs_no_query(api, key, query, django_assert_num_queries, store_reads):
    create(api, key, "1.0.0")
    api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "production"})
    first = get(api, key, query)  # warms the key cache and the prompt cache
    with django_assert_num_queries(0):
        second = get(api, key, query)
    assert second == first
    assert store_reads == []


def test_the_first_get_reads_the_registry_tables_and_the_repeat_does_not(api, key):
    create(api, key, "1.0.0")
    prompt_cache.reset()  # as a freshly started worker
    api.get(PROMPTS, key=key)  # authentication is warm from here on
    with CaptureQueriesContext(connection) as cold:
        get(api, key)
    assert registry_queries(cold), "a cold cache must load the prompt from the database"
    with CaptureQueriesContext(connection) as warm:
        get(api, key)
    assert warm.captured_queries == []


def test_a_cold_process_serves_from_the_database_not_the_store(api, key, store_reads):
    create(api, key, "1.0.0")
    prompt_cache.reset()
    assert get(api, key)["version"]["version_tag"] == "1.0.0"
    assert store_reads == []


def test_versions_share_one_pointer_load(api, key):
    create(api, key, "1.0.0")
    create(api, key, "1.1.0")
    get(api, key, "?version=1.0.0")
    with CaptureQueriesContext(connection) as context:
        get(api, key, "?version=1.1.0")
    # Only the new version's document is loaded: which versions exist is already cached.
    sql = registry_queries(context)
    assert len(sql) == 1, sql
    with CaptureQueriesContext(connection) as context:
        get(api, key, "?version=1.1.0")
        get(api, key, "?version=1.0.0")
        get(api, key)
    assert context.captured_queries == []


def test_a_create_makes_the_next_latest_get_return_the_new_version(api, key):
    create(api, key, "1.0.0")
    assert get(api, key)["version"]["version_tag"] == "1.0.0"
    assert get(api, key)["version"]["version_tag"] == "1.0.0"
    create(api, key, "1.1.0")
    body = get(api, key)
    assert body["version"]["version_tag"] == "1.1.0"
    assert body["content"]["messages"][0]["content"] == "v1.1.0"
    # A lower version does not become latest, but is visible at once by version.
    create(api, key, "1.0.5")
    assert get(api, key)["version"]["version_tag"] == "1.1.0"
    assert get(api, key, "?version=1.0.5")["content"]["messages"][0]["content"] == "v1.0.5"


def test_a_cached_miss_does_not_hide_a_new_prompt(api, key):
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 404
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 404
    create(api, key, "1.0.0")
    assert get(api, key)["version"]["version_tag"] == "1.0.0"


def test_a_cached_unknown_version_does_not_hide_it_once_created(api, key):
    create(api, key, "1.0.0")
    assert api.get(f"{PROMPTS}/welcome?version=2.0.0", key=key).status_code == 404
    create(api, key, "2.0.0")
    assert get(api, key, "?version=2.0.0")["version"]["version_tag"] == "2.0.0"


def test_a_label_move_is_visible_immediately(api, key):
    create(api, key, "1.0.0")
    create(api, key, "2.0.0")
    api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "production", "version_tag": "1.0.0"})
    assert get(api, key, "?label=production")["version"]["version_tag"] == "1.0.0"
    assert get(api, key, "?label=production")["version"]["version_tag"] == "1.0.0"
    api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "production", "version_tag": "2.0.0"})
    assert get(api, key, "?label=production")["version"]["version_tag"] == "2.0.0"
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    assert api.get(f"{PROMPTS}/welcome?label=production", key=key).status_code == 404


def test_a_change_made_by_another_worker_is_seen_through_the_shared_generation(api, key):
    create(api, key, "1.0.0")
    assert get(api, key)["version"]["version_tag"] == "1.0.0"
    # Another worker writes: the database changes and the shared generation is bumped, but this
    # process's in-memory pointers are not touched directly.
    other_row = PromptVersion.objects.get(version="1.0.0")
    PromptVersion.objects.create(
        workspace_id="default",
        prompt=other_row.prompt,
        version="3.0.0",
        document={**other_row.document, "version": "3.0.0"},
        sha256="0" * 64,
        driver="git",
        status="active",
    )
    prompt_cache.generations.bump("default", "welcome")
    assert get(api, key)["version"]["version_tag"] == "3.0.0"


def test_the_cache_is_per_prompt(api, key):
    create(api, key, "1.0.0", name="a")
    create(api, key, "1.0.0", name="b")
    get(api, key, name="a")
    get(api, key, name="b")
    create(api, key, "2.0.0", name="b")
    with CaptureQueriesContext(connection) as context:
        assert get(api, key, name="a")["version"]["version_tag"] == "1.0.0"
    assert context.captured_queries == []
    assert get(api, key, name="b")["version"]["version_tag"] == "2.0.0"
