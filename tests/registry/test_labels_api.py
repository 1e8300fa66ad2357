"""``/v1/prompts/{name}/labels``: environment labels pointing at versions, their history and audit.

Upstream §2.3 and the upstream ``labels`` integration tests; plus ours: ``?label=`` resolution on the
prompt GET (visible on the very next request after a move), the history endpoint, SemVer auto-version.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from registry.models import PromptLabel, PromptLabelEvent
from tenancy.models import AuditLog

PROMPTS = "/v1/prompts"


@pytest.fixture
def key(make_key):
    return make_key("read,write", name="deployer")[1]


def create(api, key, name="welcome", version="1.0.0"):
    body = {"name": name, "version": version, "messages": [{"role": "user", "content": f"v{version}"}]}
    response = api.post(PROMPTS, key=key, json=body)
    assert response.status_code == 201, response.content


def set_label(api, key, label="production", version=None, prompt="welcome", **kwargs):
    body = {"name": label}
    if version is not None:
        body["version_tag"] = version
    return api.post(f"{PROMPTS}/{prompt}/labels", key=key, json=body, **kwargs)


def resolved(api, key, label="production", prompt="welcome") -> str:
    response = api.get(f"{PROMPTS}/{prompt}?label={label}", key=key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["content"]["version"] == body["version"]["version_tag"]
    return body["version"]["version_tag"]


def fields_of(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    return body["details"]["fields"]


def history(api, key, label="production", prompt="welcome"):
    response = api.get(f"{PROMPTS}/{prompt}/labels/{label}/history", key=key)
    assert response.status_code == 200, response.content
    return response.json()


# --- POST ---


def test_creating_a_label(api, key):
    create(api, key)
    before = int(time.time())
    response = set_label(api, key, version="1.0.0")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["prompt_name"] == "welcome"
    assert body["name"] == "production"
    assert body["version_tag"] == "1.0.0"
    assert body["set_by"] == "deployer"
    assert before - 1 <= body["created_at"] <= time.time() + 1
    assert body["updated_at"] == body["created_at"]
    label = PromptLabel.objects.select_related("version").get()
    assert label.version.version == "1.0.0"
    assert label.workspace_id == "default"


def test_posting_an_existing_label_re_points_it(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="1.1.0")
    first = set_label(api, key, version="1.0.0").json()
    response = set_label(api, key, version="1.1.0")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version_tag"] == "1.1.0"
    assert body["created_at"] == first["created_at"]
    assert body["updated_at"] >= first["updated_at"]
    assert PromptLabel.objects.count() == 1
    assert api.get(f"{PROMPTS}/welcome/labels/production", key=key).json()["version_tag"] == "1.1.0"
    # Back again: still an upsert, never a 409.
    assert set_label(api, key, version="1.0.0").status_code == 201
    assert resolved(api, key) == "1.0.0"


def test_without_a_version_the_label_points_at_the_latest_release(api, key):
    for version in ["1.10.0", "1.9.0", "2.0.0-rc.1"]:
        create(api, key, version=version)
    response = set_label(api, key)
    assert response.status_code == 201, response.content
    assert response.json()["version_tag"] == "1.10.0"
    explicit_null = api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "b", "version_tag": None})
    assert explicit_null.status_code == 201, explicit_null.content
    assert explicit_null.json()["version_tag"] == "1.10.0"


def test_without_a_version_and_only_pre_releases_the_label_points_at_the_highest(api, key):
    create(api, key, version="1.0.0-rc.2")
    create(api, key, version="1.0.0-rc.10")
    create(api, key, version="1.0.0-beta")
    assert set_label(api, key).json()["version_tag"] == "1.0.0-rc.10"


def test_labelling_an_unknown_prompt_is_a_404(api, key):
    response = set_label(api, key, prompt="nope", version="1.0.0")
    assert response.status_code == 404
    assert response.json()["error"] == "Prompt not found"
    assert set_label(api, key, prompt="nope").status_code == 404
    assert not PromptLabel.objects.exists()


def test_labelling_an_unknown_version_is_a_400_with_details(api, key):
    create(api, key, version="1.0.0")
    response = set_label(api, key, version="2.0.0")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["error"] == "Version not found for this prompt"
    assert body["details"] == {"prompt_name": "welcome", "version_tag": "2.0.0"}
    assert body["detailsType"] == "context"
    assert not PromptLabel.objects.exists()


def test_a_version_of_another_prompt_is_not_found(api, key):
    create(api, key, "welcome", "1.0.0")
    create(api, key, "other", "2.0.0")
    response = set_label(api, key, version="2.0.0")
    assert response.status_code == 400
    assert response.json()["details"] == {"prompt_name": "welcome", "version_tag": "2.0.0"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "prod env"}, "name must contain only letters"),
        ({"name": "prod/x"}, "name must contain only letters"),
        ({"name": "prøduction"}, "name must contain only letters"),
        ({"name": ""}, '"name"'),
        ({"name": "a" * 129}, '"name"'),
        ({}, '"name" is required'),
        ({"version_tag": "1.0.0"}, '"name" is required'),
        ({"name": "p", "version_tag": "1.0"}, "version_tag must be semantic"),
        ({"name": "p", "version_tag": "a" * 65}, '"version_tag"'),
    ],
)
def test_an_invalid_label_is_a_422(api, key, body, message):
    create(api, key)
    fields = fields_of(api.post(f"{PROMPTS}/welcome/labels", key=key, json=body))
    assert any(line.startswith(message) for line in fields), fields
    assert not PromptLabel.objects.exists()


@pytest.mark.parametrize("label", ["production", "prod.eu-1", "A_b", "v1.2", "x" * 128])
def test_label_names_may_use_letters_digits_dots_hyphens_underscores(api, key, label):
    create(api, key)
    response = set_label(api, key, label=label)
    assert response.status_code == 201, response.content
    assert api.get(f"{PROMPTS}/welcome/labels/{label}", key=key).json()["name"] == label


def test_a_non_object_label_body_is_a_422(api, key):
    create(api, key)
    assert api.post(f"{PROMPTS}/welcome/labels", key=key, data="[]").status_code == 422
    assert api.post(f"{PROMPTS}/welcome/labels", key=key, data="{oops").status_code == 400


# --- GET list / GET one / DELETE ---


def test_listing_labels(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    set_label(api, key, "staging", "2.0.0")
    set_label(api, key, "production", "1.0.0")
    now = timezone.now()
    PromptLabel.objects.filter(name="staging").update(created_at=now - timedelta(minutes=2))
    PromptLabel.objects.filter(name="production").update(created_at=now - timedelta(minutes=1))
    body = api.get(f"{PROMPTS}/welcome/labels", key=key).json()
    assert body["total"] == 2
    assert body["page"] == 1
    assert body["totalPages"] == 1
    # Newest first.
    assert [(i["name"], i["version_tag"]) for i in body["items"]] == [
        ("production", "1.0.0"),
        ("staging", "2.0.0"),
    ]
    for item in body["items"]:
        assert set(item) == {"prompt_name", "name", "version_tag", "set_by", "created_at", "updated_at"}
        assert item["prompt_name"] == "welcome"


def test_listing_labels_is_paginated(api, key):
    create(api, key)
    for i in range(3):
        set_label(api, key, f"l{i}")
    body = api.get(f"{PROMPTS}/welcome/labels?limit=2&page=2", key=key).json()
    assert body["total"] == 3
    assert body["totalPages"] == 2
    assert [i["name"] for i in body["items"]] == ["l0"]
    assert api.get(f"{PROMPTS}/welcome/labels?page=0", key=key).status_code == 422


def test_listing_the_labels_of_another_prompt_shows_nothing_of_this_one(api, key):
    create(api, key, "welcome")
    create(api, key, "other")
    set_label(api, key, "production", prompt="welcome")
    assert api.get(f"{PROMPTS}/other/labels", key=key).json()["items"] == []


def test_the_labels_of_an_unknown_prompt_are_an_empty_list(api, key):
    response = api.get(f"{PROMPTS}/nope/labels", key=key)
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "page": 1, "limit": 50, "totalPages": 0}


def test_getting_one_label(api, key):
    create(api, key)
    created = set_label(api, key).json()
    response = api.get(f"{PROMPTS}/welcome/labels/production", key=key)
    assert response.status_code == 200
    assert response.json() == created


def test_getting_an_unknown_label_is_a_404(api, key):
    create(api, key)
    set_label(api, key, "production")
    for path in ["welcome/labels/staging", "nope/labels/production", "welcome/labels/PRODUCTION"]:
        response = api.get(f"{PROMPTS}/{path}", key=key)
        assert response.status_code == 404, path
        body = response.json()
        assert body["code"] == "NOT_FOUND"
        assert body["error"] == "Label not found"


def test_deleting_a_label(api, key):
    create(api, key)
    set_label(api, key, "production")
    set_label(api, key, "staging")
    response = api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"{PROMPTS}/welcome/labels/production", key=key).status_code == 404
    assert [i["name"] for i in api.get(f"{PROMPTS}/welcome/labels", key=key).json()["items"]] == ["staging"]
    # The version it pointed at is untouched.
    assert api.get(f"{PROMPTS}/welcome?version=1.0.0", key=key).status_code == 200


def test_deleting_an_unknown_label_is_a_404(api, key):
    create(api, key)
    set_label(api, key, "production")
    assert api.delete(f"{PROMPTS}/welcome/labels/production", key=key).status_code == 204
    for path in ["welcome/labels/production", "welcome/labels/never", "nope/labels/production"]:
        response = api.delete(f"{PROMPTS}/{path}", key=key)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Label not found"


def test_a_deleted_label_can_be_created_again(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    set_label(api, key, version="1.0.0")
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    response = set_label(api, key, version="2.0.0")
    assert response.status_code == 201
    assert resolved(api, key) == "2.0.0"


# --- scopes ---


def test_a_read_only_key_cannot_create_or_delete_labels(api, key, make_key):
    create(api, key)
    set_label(api, key, "production")
    _, reader = make_key("read")
    response = set_label(api, reader, "staging")
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    response = api.delete(f"{PROMPTS}/welcome/labels/production", key=reader)
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert sorted(PromptLabel.objects.values_list("name", flat=True)) == ["production"]
    # Reads are fine.
    assert api.get(f"{PROMPTS}/welcome/labels", key=reader).status_code == 200
    assert api.get(f"{PROMPTS}/welcome/labels/production", key=reader).status_code == 200
    assert api.get(f"{PROMPTS}/welcome/labels/production/history", key=reader).status_code == 200


def test_an_ingest_key_cannot_read_labels(api, key, make_key):
    create(api, key)
    set_label(api, key, "production")
    _, ingest = make_key("ingest")
    for path in ["welcome/labels", "welcome/labels/production", "welcome/labels/production/history"]:
        assert api.get(f"{PROMPTS}/{path}", key=ingest).status_code == 403, path
    assert set_label(api, ingest, "x").status_code == 403


def test_labels_need_a_key(api, key):
    create(api, key)
    set_label(api, key, "production")
    assert api.get(f"{PROMPTS}/welcome/labels").status_code == 401
    assert set_label(api, None, "x").status_code == 401
    assert api.delete(f"{PROMPTS}/welcome/labels/production").status_code == 401
    assert PromptLabel.objects.count() == 1


# --- ?label= resolution is never stale ---


def test_a_label_move_is_visible_on_the_very_next_get(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    set_label(api, key, version="1.0.0")
    assert resolved(api, key) == "1.0.0"
    assert resolved(api, key) == "1.0.0"  # served warm
    set_label(api, key, version="2.0.0")
    assert resolved(api, key) == "2.0.0"
    body = api.get(f"{PROMPTS}/welcome?label=production", key=key).json()
    assert body["content"]["messages"][0]["content"] == "v2.0.0"


def test_a_label_deletion_is_visible_on_the_very_next_get(api, key):
    create(api, key)
    set_label(api, key)
    assert resolved(api, key) == "1.0.0"
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    response = api.get(f"{PROMPTS}/welcome?label=production", key=key)
    assert response.status_code == 404
    assert response.json()["error"] == "Label not found"


def test_a_new_label_is_visible_on_the_very_next_get(api, key):
    create(api, key)
    assert api.get(f"{PROMPTS}/welcome?label=canary", key=key).status_code == 404
    set_label(api, key, "canary")
    assert resolved(api, key, "canary") == "1.0.0"


def test_a_label_does_not_change_the_default_version(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    set_label(api, key, version="1.0.0")
    assert api.get(f"{PROMPTS}/welcome", key=key).json()["version"]["version_tag"] == "2.0.0"


# --- history ---


def test_history_records_create_move_and_delete_newest_first(api, key, make_key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    _, other = make_key("read,write", name="releaser")
    set_label(api, key, version="1.0.0")
    set_label(api, other, version="2.0.0")
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    body = history(api, key)
    assert body["total"] == 3
    events = [(e["action"], e["from_version"], e["to_version"], e["actor"]) for e in body["items"]]
    assert events == [
        ("delete", "2.0.0", None, "deployer"),
        ("move", "1.0.0", "2.0.0", "releaser"),
        ("create", None, "1.0.0", "deployer"),
    ]
    for event in body["items"]:
        assert event["prompt_name"] == "welcome"
        assert event["label"] == "production"
        assert isinstance(event["created_at"], int)
        assert isinstance(event["id"], int)


def test_re_pointing_at_the_same_version_records_nothing(api, key):
    create(api, key)
    set_label(api, key, version="1.0.0")
    set_label(api, key, version="1.0.0")
    set_label(api, key)
    assert history(api, key)["total"] == 1
    assert PromptLabelEvent.objects.count() == 1


def test_history_survives_deletion_and_recreation(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    set_label(api, key, version="1.0.0")
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    set_label(api, key, version="2.0.0")
    actions = [(e["action"], e["from_version"], e["to_version"]) for e in history(api, key)["items"]]
    assert actions == [("create", None, "2.0.0"), ("delete", "1.0.0", None), ("create", None, "1.0.0")]


def test_history_is_per_label(api, key):
    create(api, key)
    set_label(api, key, "production")
    set_label(api, key, "staging")
    assert [e["label"] for e in history(api, key, "staging")["items"]] == ["staging"]


def test_history_is_paginated(api, key):
    for i in range(3):
        create(api, key, version=f"1.{i}.0")
    for i in range(3):
        set_label(api, key, version=f"1.{i}.0")
    body = api.get(f"{PROMPTS}/welcome/labels/production/history?limit=2&page=2", key=key).json()
    assert body["total"] == 3
    assert [e["to_version"] for e in body["items"]] == ["1.0.0"]


def test_history_of_an_unknown_label_is_a_404(api, key):
    create(api, key)
    set_label(api, key, "production")
    for path in ["welcome/labels/staging/history", "nope/labels/production/history"]:
        response = api.get(f"{PROMPTS}/{path}", key=key)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Label not found"


# --- audit ---


def _registry_audit():
    # Minting keys is audited too (not upstream's behaviour, but not this module's subject).
    return AuditLog.objects.exclude(action__startswith="api_key:")


def test_prompt_and_label_mutations_are_audited(api, key):
    create(api, key, version="1.0.0")
    create(api, key, version="2.0.0")
    set_label(api, key, version="1.0.0")
    set_label(api, key, version="2.0.0")
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    rows = list(
        _registry_audit()
        .order_by("id")
        .values_list("action", "prompt_name", "version_tag", "target_id", "api_key_name")
    )
    assert rows == [
        ("create_prompt", "welcome", "1.0.0", "welcome", "deployer"),
        ("create_prompt", "welcome", "2.0.0", "welcome", "deployer"),
        ("label:create", "welcome", "1.0.0", "production", "deployer"),
        ("label:create", "welcome", "2.0.0", "production", "deployer"),
        ("label:delete", "welcome", "2.0.0", "production", "deployer"),
    ]
    assert set(_registry_audit().values_list("workspace_id", flat=True)) == {"default"}


def test_failed_label_requests_are_not_audited(api, key, make_key):
    create(api, key)
    set_label(api, key, version="9.9.9")
    set_label(api, key, label="bad label")
    set_label(api, key, prompt="nope")
    api.delete(f"{PROMPTS}/welcome/labels/never", key=key)
    _, reader = make_key("read")
    set_label(api, reader)
    assert list(_registry_audit().values_list("action", flat=True)) == ["create_prompt"]


def test_the_audit_log_api_shows_the_label_entries(api, key, admin):
    create(api, key)
    set_label(api, key)
    api.delete(f"{PROMPTS}/welcome/labels/production", key=key)
    response = api.get("/v1/audit-logs", key=admin[1])
    assert response.status_code == 200, response.content
    items = response.json()["items"]
    by_action = {i["action"]: i for i in items}
    assert set(by_action) >= {"create_prompt", "label:create", "label:delete"}
    assert by_action["label:create"]["prompt_name"] == "welcome"
    assert by_action["label:create"]["version_tag"] == "1.0.0"
    assert by_action["label:create"]["target_id"] == "production"
    assert by_action["label:delete"]["version_tag"] == "1.0.0"
    assert by_action["create_prompt"]["api_key_name"] == "deployer"
    filtered = api.get("/v1/audit-logs?action=label:delete", key=admin[1]).json()["items"]
    assert [i["action"] for i in filtered] == ["label:delete"]
