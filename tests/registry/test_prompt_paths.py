"""Path traversal through prompt names, versions and labels: refused or 404, always JSON, never a 500.

Names and versions become paths (``prompts/{name}/{version}.json``) and tag names in the store, so
upstream guards every driver against ``..``, ``/`` and ``\\`` (§3.1). Nothing may be written outside
``GIT_ROOT``, and nothing but well-formed entries inside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings

from registry.models import Prompt, PromptLabel, PromptVersion
from registry.storage import get_store

PROMPTS = "/v1/prompts"


BAD_NAMES = [
    "..",
    ".",
    "../x",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "..\\x",
    "%2e%2e",
    "%2F",
    "~root",
]
BAD_VERSIONS = [
    "../../1.0.0",
    "1.0.0/../../x",
    "../1.0.0",
    "1.0.0/..",
    "1.0.0\\..\\x",
    "..",
    "1.0.0%2F..",
    "1.0.0-..",
    "1.0.0-a..b",
    "1.0.0+..",
]


@pytest.fixture
def key(make_key):
    return make_key("read,write")[1]


@pytest.fixture
def sandbox():
    """Snapshot of GIT_ROOT's parent: a traversal would leave a new entry there."""
    parent = Path(settings.GIT_ROOT).parent
    before = set(os.listdir(parent))
    yield parent
    assert set(os.listdir(parent)) == before, "something was written next to GIT_ROOT"


def doc(name="welcome", version="1.0.0") -> dict:
    return {"name": name, "version": version, "messages": [{"role": "user", "content": "hi"}]}


def assert_json_refusal(response, statuses=(400, 404, 422)):
    assert response.status_code in statuses, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] in {"BAD_REQUEST", "NOT_FOUND", "VALIDATION_FAILED"}
    return body


def git_root_entries() -> set[str]:
    root = Path(settings.GIT_ROOT)
    return set(os.listdir(root)) if root.exists() else set()


def stored_paths(workspace_id: str = "default") -> list[tuple[str, str]]:
    return (
        get_store().versions(workspace_id)
        if (Path(settings.GIT_ROOT) / f"{workspace_id}.git").exists()
        else []
    )


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_traversal_name_is_refused_on_create(api, key, sandbox, name):
    response = api.post(PROMPTS, key=key, json=doc(name=name))
    body = assert_json_refusal(response, (422,))
    assert body["details"]["fields"] == ["name must contain only letters, numbers, hyphens, and underscores"]
    assert not Prompt.objects.exists()
    assert git_root_entries() == set()


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_a_traversal_version_is_refused_on_create(api, key, sandbox, version):
    response = api.post(PROMPTS, key=key, json=doc(version=version))
    body = assert_json_refusal(response, (422,))
    assert len(body["details"]["fields"]) == 1
    assert body["details"]["fields"][0].startswith("version must be semantic")
    assert not PromptVersion.objects.exists()
    assert git_root_entries() == set()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/prompts/..",
        "/v1/prompts/%2e%2e",
        "/v1/prompts/..%2Fetc",
        "/v1/prompts/..%2F..%2Fetc%2Fpasswd",
        "/v1/prompts/..%5C..%5Cwindows",
        "/v1/prompts/a%2Fb",
        "/v1/prompts/a%5Cb",
        "/v1/prompts/%252e%252e",
        "/v1/prompts/..%2Fwelcome/versions",
        "/v1/prompts/..%2Fwelcome/labels",
        "/v1/prompts/welcome/labels/..%2F..%2Fx",
        "/v1/prompts/welcome/labels/%2e%2e/history",
        "/v1/prompts/welcome/..%2F..%2Fdiff",
        "/v1/prompts/../v1/prompts/welcome",
        "/v1/prompts/%2e%2e%2fwelcome",
    ],
)
def test_traversal_in_the_url_path_is_a_json_404(api, key, sandbox, path):
    api.post(PROMPTS, key=key, json=doc())
    response = api.get(path, key=key)
    body = assert_json_refusal(response, (400, 404))
    assert "hi" not in response.content.decode()
    assert body["code"] in {"NOT_FOUND", "BAD_REQUEST"}


@pytest.mark.parametrize("name", ["..", "%2e%2e", "~root"])
def test_a_traversal_name_in_a_list_url_lists_nothing(api, key, name):
    # Upstream: listing the versions or labels of an unknown prompt is an empty list, not a 404.
    api.post(PROMPTS, key=key, json=doc())
    api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "production"})
    for suffix in ["versions", "labels"]:
        response = api.get(f"{PROMPTS}/{name}/{suffix}", key=key)
        assert response.status_code == 200, (suffix, response.content)
        assert response.json()["items"] == []


@pytest.mark.parametrize("name", ["..", "%2e%2e", "..%2Fetc", "a%2Fb", "a%5Cb"])
def test_traversal_names_in_write_urls_are_refused(api, key, sandbox, name):
    api.post(PROMPTS, key=key, json=doc())
    entries = git_root_entries()
    assert_json_refusal(api.post(f"{PROMPTS}/{name}/labels", key=key, json={"name": "production"}))
    assert_json_refusal(api.post(f"{PROMPTS}/{name}/render", key=key, json={}))
    assert_json_refusal(api.delete(f"{PROMPTS}/{name}/labels/production", key=key))
    assert not PromptLabel.objects.exists()
    assert git_root_entries() == entries


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_a_traversal_version_in_the_query_is_a_404(api, key, sandbox, version):
    api.post(PROMPTS, key=key, json=doc())
    response = api.get(f"{PROMPTS}/welcome?{urlencode({'version': version})}", key=key)
    body = assert_json_refusal(response, (404,))
    assert body["error"] == "Prompt not found"
    response = api.post(f"{PROMPTS}/welcome/render", key=key, json={"version": version})
    assert_json_refusal(response, (404, 422))
    response = api.get(f"{PROMPTS}/welcome/diff?{urlencode({'from': version, 'to': '1.0.0'})}", key=key)
    assert_json_refusal(response, (404,))


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_a_traversal_version_is_refused_for_a_label(api, key, sandbox, version):
    api.post(PROMPTS, key=key, json=doc())
    response = api.post(
        f"{PROMPTS}/welcome/labels", key=key, json={"name": "production", "version_tag": version}
    )
    assert_json_refusal(response, (400, 422))
    assert not PromptLabel.objects.exists()


@pytest.mark.parametrize("label", ["../x", "a/b", "a\\b", "a\x00b", "prod env"])
def test_a_traversal_label_name_is_refused(api, key, label):
    api.post(PROMPTS, key=key, json=doc())
    response = api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": label})
    assert_json_refusal(response, (422,))
    assert not PromptLabel.objects.exists()


@pytest.mark.parametrize("label", ["..", "%2e%2e", "..%2F..%2Fx"])
def test_a_traversal_label_in_the_query_is_a_404(api, key, label):
    api.post(PROMPTS, key=key, json=doc())
    response = api.get(f"{PROMPTS}/welcome?label={label}", key=key)
    assert_json_refusal(response, (404,))


@pytest.mark.parametrize("q", ["..", "../", "a/b", "a\\b", "%2F", "%2e%2e", "w%2Fe"])
def test_a_search_with_path_characters_is_a_plain_search(api, key, q):
    api.post(PROMPTS, key=key, json=doc())
    response = api.get(f"{PROMPTS}?q={q}", key=key)
    assert response.status_code == 200, response.content
    assert response.json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "/v1/prompts/a%00b",
        "/v1/prompts/a%00b/versions",
        "/v1/prompts/a%00b/labels",
        "/v1/prompts/welcome/labels/a%00b",
        "/v1/prompts/welcome/labels/a%00b/history",
        "/v1/prompts?q=%00",
        "/v1/prompts/welcome?version=1.0.0%00",
        "/v1/prompts/welcome?label=a%00b",
    ],
)
def test_a_nul_byte_anywhere_in_the_url_is_a_400(api, key, url):
    # PostgreSQL refuses NUL in text and SQLite cuts LIKE patterns at it: refused before any query.
    api.post(PROMPTS, key=key, json=doc())
    for method in (api.get, api.delete, api.post):
        body = assert_json_refusal(method(url, key=key), (400,))
        assert body["error"] == "NUL bytes are not allowed in URLs"


@pytest.mark.parametrize("workspace", ["..", "../x", "a/b", "a\\b", ".", "a b"])
def test_a_traversal_workspace_header_is_a_400(api, master, sandbox, workspace):
    response = api.post(PROMPTS, key=master[1], workspace=workspace, json=doc())
    assert_json_refusal(response, (400,))
    assert git_root_entries() == set()


def test_only_well_formed_entries_exist_after_the_attempts(api, key, sandbox):
    for name in BAD_NAMES:
        api.post(PROMPTS, key=key, json=doc(name=name))
    for version in BAD_VERSIONS:
        api.post(PROMPTS, key=key, json=doc(version=version))
    assert api.post(PROMPTS, key=key, json=doc()).status_code == 201
    assert git_root_entries() <= {"default.git", "default.lock"}
    assert stored_paths() == [("welcome", "1.0.0")]


def test_the_store_itself_refuses_traversal(sandbox):
    store = get_store()
    for name, version in [
        ("..", "1.0.0"),
        ("../x", "1.0.0"),
        ("a/b", "1.0.0"),
        ("ok", "../../1.0.0"),
        ("ok", "1.0.0/.."),
    ]:
        with pytest.raises(ValueError):
            store.put(workspace_id="default", name=name, version=version, content=b"{}", author="t")
        assert store.get(workspace_id="default", name=name, version=version) is None
    with pytest.raises(ValueError):
        store.put(workspace_id="../evil", name="ok", version="1.0.0", content=b"{}", author="t")
    assert git_root_entries() <= {"default.git", "default.lock"}
    assert stored_paths() == []


def test_an_encoded_name_reaching_a_real_prompt_does_not_escape(api, key):
    # "%2e%2e%2fwelcome" decodes to "../welcome" before routing: no route matches, nothing leaks.
    api.post(PROMPTS, key=key, json=doc())
    response = api.get(f"{PROMPTS}/{quote('../welcome', safe='')}", key=key)
    assert_json_refusal(response, (404,))
