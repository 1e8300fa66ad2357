"""Workspaces never see each other's prompts, versions, labels or Git repositories.

Upstream's ``tenant`` tests, plus what upstream got wrong (§3.2 [BUG]: global uniqueness on
(name, version) and labels, shared storage): here the workspace is part of every key and path.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from registry.models import Prompt, PromptLabel, PromptVersion
from registry.storage import get_store

PROMPTS = "/v1/prompts"


def doc(text: str, version: str = "1.0.0", name: str = "welcome") -> dict:
    return {"name": name, "version": version, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
def tenants(api, make_key):
    """Keys bound to workspaces ``a`` and ``b``; ``a`` and ``b`` each hold welcome@1.0.0."""
    _, key_a = make_key("read,write", workspace="a", name="key-a")
    _, key_b = make_key("read,write", workspace="b", name="key-b")
    for key, ws, text in [(key_a, "a", "from A"), (key_b, "b", "from B")]:
        response = api.post(PROMPTS, key=key, workspace=ws, json=doc(text))
        assert response.status_code == 201, response.content
    return {"a": key_a, "b": key_b}


def get_json(api, path, key, ws):
    response = api.get(path, key=key, workspace=ws)
    assert response.status_code == 200, (path, response.content)
    return response.json()


def test_the_same_name_and_version_exist_independently(api, tenants):
    assert PromptVersion.objects.filter(version="1.0.0").count() == 2
    assert set(Prompt.objects.values_list("workspace_id", flat=True)) == {"a", "b"}
    for ws, text in [("a", "from A"), ("b", "from B")]:
        body = get_json(api, f"{PROMPTS}/welcome", tenants[ws], ws)
        assert body["content"]["messages"][0]["content"] == text
        assert (
            get_json(api, f"{PROMPTS}/welcome?version=1.0.0", tenants[ws], ws)["content"] == body["content"]
        )


def test_each_workspace_has_its_own_git_repository(api, tenants):
    assert (settings.GIT_ROOT / "a.git").is_dir()
    assert (settings.GIT_ROOT / "b.git").is_dir()
    store = get_store()
    stored_a = store.get(workspace_id="a", name="welcome", version="1.0.0")
    stored_b = store.get(workspace_id="b", name="welcome", version="1.0.0")
    assert json.loads(stored_a.content)["messages"][0]["content"] == "from A"
    assert json.loads(stored_b.content)["messages"][0]["content"] == "from B"
    assert store.get(workspace_id="default", name="welcome", version="1.0.0") is None
    # The version records point into each workspace's own history.
    record_a = get_json(api, f"{PROMPTS}/welcome", tenants["a"], "a")["version"]
    record_b = get_json(api, f"{PROMPTS}/welcome", tenants["b"], "b")["version"]
    assert record_a["commit_sha"] == stored_a.record.commit_sha
    assert record_b["commit_sha"] == stored_b.record.commit_sha
    assert record_a["commit_sha"] != record_b["commit_sha"]


def test_a_duplicate_is_per_workspace(api, tenants):
    response = api.post(PROMPTS, key=tenants["a"], workspace="a", json=doc("again"))
    assert response.status_code == 409
    # B's copy is untouched by A's failed attempt.
    body = get_json(api, f"{PROMPTS}/welcome", tenants["b"], "b")
    assert body["content"]["messages"][0]["content"] == "from B"


def test_lists_show_only_the_workspace_s_prompts(api, tenants):
    api.post(PROMPTS, key=tenants["a"], workspace="a", json=doc("x", name="only-a"))
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("x", name="only-b"))
    assert get_json(api, PROMPTS, tenants["a"], "a")["items"] == [{"name": "only-a"}, {"name": "welcome"}]
    assert get_json(api, PROMPTS, tenants["b"], "b")["items"] == [{"name": "only-b"}, {"name": "welcome"}]
    assert get_json(api, f"{PROMPTS}/search?q=only", tenants["a"], "a")["items"] == [{"name": "only-a"}]
    assert get_json(api, f"{PROMPTS}?q=only", tenants["b"], "b")["items"] == [{"name": "only-b"}]
    response = api.get(f"{PROMPTS}/only-b", key=tenants["a"], workspace="a")
    assert response.status_code == 404
    assert response.json()["error"] == "Prompt not found"


def test_versions_and_latest_are_per_workspace(api, tenants):
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("newer", version="2.0.0"))
    assert get_json(api, f"{PROMPTS}/welcome", tenants["a"], "a")["version"]["version_tag"] == "1.0.0"
    assert get_json(api, f"{PROMPTS}/welcome", tenants["b"], "b")["version"]["version_tag"] == "2.0.0"
    assert api.get(f"{PROMPTS}/welcome?version=2.0.0", key=tenants["a"], workspace="a").status_code == 404
    items_a = get_json(api, f"{PROMPTS}/welcome/versions", tenants["a"], "a")["items"]
    items_b = get_json(api, f"{PROMPTS}/welcome/versions", tenants["b"], "b")["items"]
    assert [(i["version_tag"], i["workspace_id"]) for i in items_a] == [("1.0.0", "a")]
    assert sorted((i["version_tag"], i["workspace_id"]) for i in items_b) == [("1.0.0", "b"), ("2.0.0", "b")]


def test_labels_with_the_same_name_are_independent(api, tenants):
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("B two", version="2.0.0"))
    for ws, version in [("a", "1.0.0"), ("b", "2.0.0")]:
        response = api.post(
            f"{PROMPTS}/welcome/labels",
            key=tenants[ws],
            workspace=ws,
            json={"name": "production", "version_tag": version},
        )
        assert response.status_code == 201, response.content
    assert PromptLabel.objects.count() == 2
    body_a = get_json(api, f"{PROMPTS}/welcome?label=production", tenants["a"], "a")
    body_b = get_json(api, f"{PROMPTS}/welcome?label=production", tenants["b"], "b")
    assert (body_a["version"]["version_tag"], body_a["content"]["messages"][0]["content"]) == (
        "1.0.0",
        "from A",
    )
    assert (body_b["version"]["version_tag"], body_b["content"]["messages"][0]["content"]) == (
        "2.0.0",
        "B two",
    )

    # Labels of one workspace are invisible and untouchable from the other.
    api.post(f"{PROMPTS}/welcome/labels", key=tenants["b"], workspace="b", json={"name": "canary"})
    assert [i["name"] for i in get_json(api, f"{PROMPTS}/welcome/labels", tenants["a"], "a")["items"]] == [
        "production"
    ]
    assert api.get(f"{PROMPTS}/welcome/labels/canary", key=tenants["a"], workspace="a").status_code == 404
    assert api.delete(f"{PROMPTS}/welcome/labels/canary", key=tenants["a"], workspace="a").status_code == 404
    assert api.get(f"{PROMPTS}/welcome?label=canary", key=tenants["a"], workspace="a").status_code == 404
    assert api.get(f"{PROMPTS}/welcome/labels/canary", key=tenants["b"], workspace="b").status_code == 200

    # Deleting A's production leaves B's alone.
    assert (
        api.delete(f"{PROMPTS}/welcome/labels/production", key=tenants["a"], workspace="a").status_code == 204
    )
    assert get_json(api, f"{PROMPTS}/welcome?label=production", tenants["b"], "b")["version"][
        "version_tag"
    ] == ("2.0.0")


def test_a_label_cannot_point_at_another_workspace_s_version(api, tenants):
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("B two", version="2.0.0"))
    response = api.post(
        f"{PROMPTS}/welcome/labels",
        key=tenants["a"],
        workspace="a",
        json={"name": "p", "version_tag": "2.0.0"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Version not found for this prompt"
    # Auto-version resolves within the workspace only.
    response = api.post(f"{PROMPTS}/welcome/labels", key=tenants["a"], workspace="a", json={"name": "p"})
    assert response.json()["version_tag"] == "1.0.0"


def test_label_history_is_per_workspace(api, tenants):
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("B two", version="2.0.0"))
    api.post(f"{PROMPTS}/welcome/labels", key=tenants["b"], workspace="b", json={"name": "production"})
    api.post(
        f"{PROMPTS}/welcome/labels",
        key=tenants["b"],
        workspace="b",
        json={"name": "production", "version_tag": "1.0.0"},
    )
    api.post(f"{PROMPTS}/welcome/labels", key=tenants["a"], workspace="a", json={"name": "production"})
    history_a = get_json(api, f"{PROMPTS}/welcome/labels/production/history", tenants["a"], "a")
    history_b = get_json(api, f"{PROMPTS}/welcome/labels/production/history", tenants["b"], "b")
    assert [(e["action"], e["actor"]) for e in history_a["items"]] == [("create", "key-a")]
    assert [(e["action"], e["actor"]) for e in history_b["items"]] == [("move", "key-b"), ("create", "key-b")]
    api.post(f"{PROMPTS}/welcome/labels", key=tenants["b"], workspace="b", json={"name": "staging"})
    response = api.get(f"{PROMPTS}/welcome/labels/staging/history", key=tenants["a"], workspace="a")
    assert response.status_code == 404


def test_diff_is_per_workspace(api, tenants):
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("B two", version="2.0.0"))
    ok = get_json(api, f"{PROMPTS}/welcome/diff?from=1.0.0&to=2.0.0", tenants["b"], "b")
    assert '-      "content": "from B"' in ok["diff"]
    assert "from A" not in ok["diff"]
    response = api.get(f"{PROMPTS}/welcome/diff?from=1.0.0&to=2.0.0", key=tenants["a"], workspace="a")
    assert response.status_code == 404
    assert "B two" not in response.content.decode()


def test_rendering_is_per_workspace(api, tenants):
    response = api.post(f"{PROMPTS}/welcome/render", key=tenants["b"], workspace="b", json={})
    assert response.json()["messages"][0]["content"] == "from B"
    response = api.post(f"{PROMPTS}/only-b/render", key=tenants["a"], workspace="a", json={})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{PROMPTS}"),
        ("GET", f"{PROMPTS}/welcome"),
        ("GET", f"{PROMPTS}/welcome/versions"),
        ("GET", f"{PROMPTS}/welcome/labels"),
        ("POST", f"{PROMPTS}"),
        ("POST", f"{PROMPTS}/welcome/labels"),
        ("POST", f"{PROMPTS}/welcome/render"),
    ],
)
def test_a_key_of_workspace_a_addressing_workspace_b_is_a_401(api, tenants, method, path):
    body = doc("intruder", version="9.0.0") if path == PROMPTS else {"name": "x"}
    response = api.request(method, path, key=tenants["a"], workspace="b", json=body)
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "UNAUTHORIZED"
    assert "from B" not in response.content.decode()
    assert not PromptVersion.objects.filter(version="9.0.0").exists()
    assert not PromptLabel.objects.exists()


def test_a_workspace_key_without_the_header_addresses_default_and_is_refused(api, tenants):
    assert api.get(f"{PROMPTS}/welcome", key=tenants["a"]).status_code == 401


def test_a_master_key_works_in_any_workspace_through_the_header(api, tenants, master):
    body = get_json(api, f"{PROMPTS}/welcome", master[1], "a")
    assert body["content"]["messages"][0]["content"] == "from A"
    body = get_json(api, f"{PROMPTS}/welcome", master[1], "b")
    assert body["content"]["messages"][0]["content"] == "from B"
    response = api.post(PROMPTS, key=master[1], workspace="c", json=doc("from C"))
    assert response.status_code == 201, response.content
    assert (
        get_json(api, f"{PROMPTS}/welcome", master[1], "c")["content"]["messages"][0]["content"] == "from C"
    )
    assert (settings.GIT_ROOT / "c.git").is_dir()
    assert get_json(api, PROMPTS, tenants["a"], "a")["total"] == 1
    # Without the header a master key works in "default", which has no prompt.
    assert api.get(f"{PROMPTS}/welcome", key=master[1]).status_code == 404
    assert get_json(api, PROMPTS, master[1], "default")["items"] == []


def test_a_master_key_creates_in_two_workspaces(api, master):
    for ws, text in [("x1", "one"), ("x2", "two")]:
        response = api.post(PROMPTS, key=master[1], workspace=ws, json=doc(text))
        assert response.status_code == 201, response.content
    for ws, text in [("x1", "one"), ("x2", "two")]:
        body = get_json(api, f"{PROMPTS}/welcome", master[1], ws)
        assert body["content"]["messages"][0]["content"] == text
        stored = get_store().get(workspace_id=ws, name="welcome", version="1.0.0")
        assert json.loads(stored.content)["messages"][0]["content"] == text


def test_the_prompt_cache_is_per_workspace(api, tenants):
    # Warm A's cache, then change B: A keeps serving its own content, B serves its new content.
    for _ in range(2):
        assert get_json(api, f"{PROMPTS}/welcome", tenants["a"], "a")["version"]["version_tag"] == "1.0.0"
    api.post(PROMPTS, key=tenants["b"], workspace="b", json=doc("B three", version="3.0.0"))
    assert get_json(api, f"{PROMPTS}/welcome", tenants["a"], "a")["version"]["version_tag"] == "1.0.0"
    assert get_json(api, f"{PROMPTS}/welcome", tenants["b"], "b")["version"]["version_tag"] == "3.0.0"
