"""The two-phase write of a version (pending row -> store -> active) and its reconciliation.

Upstream ``prompt-transaction`` tests: the row ends ``active``; a stuck ``pending`` row whose content
reached storage is promoted; one whose content did not is removed. Plus ours: reads never see pending
rows, stale pending rows are reclaimed by a new create, store failures are a 503 (not a 500).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from registry import services
from registry.documents import content_sha256, serialize
from registry.models import Prompt, PromptVersion, VersionStatus
from registry.services import prompt_reconcile
from registry.storage import StoredDifferently, StoreError, get_store
from tenancy.models import Workspace

PROMPTS = "/v1/prompts"

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(make_key):
    return make_key("read,write")[1]


def doc(name="welcome", version="1.0.0", text="hello") -> dict:
    return {"name": name, "version": version, "messages": [{"role": "user", "content": text}]}


def pending(
    name="welcome",
    version="1.0.0",
    *,
    age_s: float = 3600,
    stored: bool | str = False,
    workspace_id="default",
    text="hello",
) -> PromptVersion:
    """A version row stuck in ``pending``, ``age_s`` old; ``stored`` puts its content in the store
    (or, given a string, puts a document with that text instead: the store holds other bytes)."""
    Workspace.objects.get_or_create(id=workspace_id, defaults={"name": workspace_id})
    document = doc(name, version, text)
    content = serialize(document)
    if stored:
        stored_doc = document if stored is True else doc(name, version, stored)
        get_store().put(
            workspace_id=workspace_id,
            name=name,
            version=version,
            content=serialize(stored_doc),
            author="crashed",
        )
    prompt, _ = Prompt.objects.get_or_create(workspace_id=workspace_id, name=name)
    return PromptVersion.objects.create(
        workspace_id=workspace_id,
        prompt=prompt,
        version=version,
        document=document,
        sha256=content_sha256(content),
        driver="git",
        status=VersionStatus.PENDING,
        created_at=timezone.now() - timedelta(seconds=age_s),
    )


# --- the normal path ---


def test_a_create_leaves_an_active_row_matching_the_store(api, key):
    api.post(PROMPTS, key=key, json=doc())
    row = PromptVersion.objects.get()
    assert row.status == VersionStatus.ACTIVE
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert content_sha256(stored.content) == row.sha256
    assert stored.record.commit_sha == row.commit_sha
    assert stored.record.tag == row.tag == "prompts/welcome/1.0.0"


# --- reconciliation ---


def test_a_pending_row_whose_content_is_stored_is_promoted(api, key):
    row = pending(stored=True)
    report = prompt_reconcile(grace_seconds=0)
    assert report.promoted == ["default/welcome@1.0.0"]
    assert report.removed == report.adopted == report.failed == []
    row.refresh_from_db()
    assert row.status == VersionStatus.ACTIVE
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert row.commit_sha == stored.record.commit_sha
    assert row.tag == "prompts/welcome/1.0.0"
    body = api.get(f"{PROMPTS}/welcome", key=key).json()
    assert body["content"] == doc()
    assert body["version"]["commit_sha"] == stored.record.commit_sha


def test_a_pending_row_whose_content_is_not_stored_is_removed(api, key):
    row = pending(stored=False)
    report = prompt_reconcile(grace_seconds=0)
    assert report.removed == ["default/welcome@1.0.0"]
    assert report.promoted == []
    assert not PromptVersion.objects.filter(pk=row.pk).exists()
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 404


def test_a_pending_row_whose_store_holds_other_bytes_adopts_the_store(api, key):
    row = pending(stored="what the store holds")
    report = prompt_reconcile(grace_seconds=0)
    assert report.adopted == ["default/welcome@1.0.0"]
    row.refresh_from_db()
    assert row.status == VersionStatus.ACTIVE
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert row.sha256 == content_sha256(stored.content)
    assert row.document == json.loads(stored.content)
    body = api.get(f"{PROMPTS}/welcome", key=key).json()
    assert body["content"]["messages"][0]["content"] == "what the store holds"
    assert body["version"]["sha256"] == content_sha256(stored.content)


def test_young_pending_rows_are_left_alone(api, key):
    young_stored = pending("a", age_s=0, stored=True)
    young_missing = pending("b", age_s=0)
    old_missing = pending("c", age_s=120)
    report = prompt_reconcile(grace_seconds=60)
    assert report.removed == ["default/c@1.0.0"]
    assert report.promoted == []
    young_stored.refresh_from_db()
    young_missing.refresh_from_db()
    assert young_stored.status == young_missing.status == VersionStatus.PENDING
    assert not PromptVersion.objects.filter(pk=old_missing.pk).exists()


def test_the_default_grace_period_spares_rows_in_flight():
    row = pending(age_s=services.RECONCILE_GRACE_S / 2)
    report = prompt_reconcile()
    assert report.removed == report.promoted == []
    row.refresh_from_db()
    assert row.status == VersionStatus.PENDING


def test_reconcile_does_not_touch_active_rows(api, key):
    api.post(PROMPTS, key=key, json=doc())
    PromptVersion.objects.update(created_at=timezone.now() - timedelta(hours=1))
    report = prompt_reconcile(grace_seconds=0)
    assert report == services.ReconcileReport()
    assert PromptVersion.objects.get().status == VersionStatus.ACTIVE


def test_reconcile_handles_every_workspace(api, master):
    pending("p", workspace_id="w1", stored=True)
    pending("p", workspace_id="w2")
    report = prompt_reconcile(grace_seconds=0)
    assert report.promoted == ["w1/p@1.0.0"]
    assert report.removed == ["w2/p@1.0.0"]
    assert api.get(f"{PROMPTS}/p", key=master[1], workspace="w1").status_code == 200
    assert api.get(f"{PROMPTS}/p", key=master[1], workspace="w2").status_code == 404


def test_a_store_failure_during_reconcile_leaves_the_row_pending(monkeypatch):
    row = pending(stored=True)

    def broken_get(**kwargs):
        raise StoreError("disk on fire")

    monkeypatch.setattr(get_store(), "get", broken_get)
    report = prompt_reconcile(grace_seconds=0)
    assert report.failed == ["default/welcome@1.0.0"]
    row.refresh_from_db()
    assert row.status == VersionStatus.PENDING


def test_a_promoted_version_is_visible_at_once_even_after_a_cached_miss(api, key):
    pending(stored=True)
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 404
    prompt_reconcile(grace_seconds=0)
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 200


# --- pending rows are invisible ---


def test_pending_rows_are_invisible_to_reads(api, key):
    pending("ghost", age_s=0, stored=True)
    response = api.get(f"{PROMPTS}/ghost", key=key)
    assert response.status_code == 404
    assert response.json()["error"] == "Prompt not found"
    assert api.get(PROMPTS, key=key).json()["items"] == []
    assert api.get(f"{PROMPTS}/search?q=gho", key=key).json()["items"] == []
    assert api.get(f"{PROMPTS}/ghost/versions", key=key).json()["items"] == []
    assert api.post(f"{PROMPTS}/ghost/render", key=key, json={}).status_code == 404
    assert api.post(f"{PROMPTS}/ghost/labels", key=key, json={"name": "p"}).status_code == 404


def test_a_pending_version_of_a_visible_prompt_is_invisible(api, key):
    api.post(PROMPTS, key=key, json=doc(version="1.0.0"))
    pending(version="2.0.0", age_s=0, stored=True)
    assert api.get(f"{PROMPTS}/welcome", key=key).json()["version"]["version_tag"] == "1.0.0"
    assert api.get(f"{PROMPTS}/welcome?version=2.0.0", key=key).status_code == 404
    items = api.get(f"{PROMPTS}/welcome/versions", key=key).json()["items"]
    assert [i["version_tag"] for i in items] == ["1.0.0"]
    response = api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "p", "version_tag": "2.0.0"})
    assert response.status_code == 400
    # The label's auto-version ignores it too.
    response = api.post(f"{PROMPTS}/welcome/labels", key=key, json={"name": "p"})
    assert response.json()["version_tag"] == "1.0.0"


# --- creating over a pending row ---


def test_a_create_reclaims_a_stale_pending_row(api, key):
    stale = pending(age_s=3600, stored=False, text="lost")
    response = api.post(PROMPTS, key=key, json=doc(text="fresh"))
    assert response.status_code == 201, response.content
    row = PromptVersion.objects.get()
    assert row.pk != stale.pk
    assert row.status == VersionStatus.ACTIVE
    assert api.get(f"{PROMPTS}/welcome", key=key).json()["content"]["messages"][0]["content"] == "fresh"


def test_a_create_over_a_stale_pending_row_whose_content_was_stored_is_a_409(api, key):
    # The earlier write did reach the store: the version exists, so it is not replaced.
    pending(age_s=3600, stored=True, text="first")
    response = api.post(PROMPTS, key=key, json=doc(text="second"))
    assert response.status_code == 409, response.content
    assert response.json()["details"] == {"name": "welcome", "version": "1.0.0"}
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert json.loads(stored.content)["messages"][0]["content"] == "first"


def test_a_create_over_a_stale_pending_row_whose_content_was_stored_promotes_it(api, key):
    pending(age_s=3600, stored=True, text="first")
    assert api.post(PROMPTS, key=key, json=doc(text="second")).status_code == 409
    assert PromptVersion.objects.get().status == VersionStatus.ACTIVE
    assert api.get(f"{PROMPTS}/welcome", key=key).json()["content"]["messages"][0]["content"] == "first"


def test_a_create_over_a_fresh_pending_row_is_a_409(api, key):
    fresh = pending(age_s=0, stored=False)
    response = api.post(PROMPTS, key=key, json=doc())
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "CONFLICT"
    assert body["details"] == {"name": "welcome", "version": "1.0.0"}
    fresh.refresh_from_db()
    assert fresh.status == VersionStatus.PENDING


# --- store failures during a create ---


def test_a_store_failure_is_a_503_and_leaves_no_row(api, key, monkeypatch):
    def broken_put(**kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(get_store(), "put", broken_put)
    response = api.post(PROMPTS, key=key, json=doc())
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "STORAGE_UNAVAILABLE"
    assert body["error"] == "Prompt storage is unavailable, try again"
    assert not PromptVersion.objects.exists()
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 404
    assert api.get(PROMPTS, key=key).json()["items"] == []
    # Once the store is back the same create succeeds.
    monkeypatch.undo()
    assert api.post(PROMPTS, key=key, json=doc()).status_code == 201


def test_a_store_failure_with_an_unreadable_store_leaves_a_pending_row_for_reconciliation(
    api, key, monkeypatch
):
    store = get_store()

    def broken(**kwargs):
        raise StoreError("network down")

    monkeypatch.setattr(store, "put", broken)
    monkeypatch.setattr(store, "get", broken)
    response = api.post(PROMPTS, key=key, json=doc())
    assert response.status_code == 503
    assert not PromptVersion.objects.filter(status=VersionStatus.ACTIVE).exists()
    assert PromptVersion.objects.get().status == VersionStatus.PENDING
    assert api.get(f"{PROMPTS}/welcome", key=key).status_code == 404
    monkeypatch.undo()
    assert prompt_reconcile(grace_seconds=0).removed == ["default/welcome@1.0.0"]
    assert api.post(PROMPTS, key=key, json=doc()).status_code == 201


def test_a_put_that_failed_after_storing_is_settled_from_the_store(api, key, monkeypatch):
    store = get_store()
    real_put = store.put

    def put_then_fail(**kwargs):
        real_put(**kwargs)
        raise StoreError("timeout waiting for the reply")

    monkeypatch.setattr(store, "put", put_then_fail)
    response = api.post(PROMPTS, key=key, json=doc())
    # The client was told the write failed (503) although it took effect; either answer is defensible,
    # what matters is that the index agrees with the store.
    assert response.status_code in (201, 503), response.content
    row = PromptVersion.objects.get()
    assert row.status == VersionStatus.ACTIVE
    assert (
        row.commit_sha == store.get(workspace_id="default", name="welcome", version="1.0.0").record.commit_sha
    )


def test_content_stored_differently_is_a_409(api, key):
    get_store().put(
        workspace_id="default",
        name="welcome",
        version="1.0.0",
        content=serialize(doc(text="other")),
        author="x",
    )
    response = api.post(PROMPTS, key=key, json=doc(text="mine"))
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "CONFLICT"
    assert body["details"] == {"name": "welcome", "version": "1.0.0"}
    assert not PromptVersion.objects.exists()
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert json.loads(stored.content)["messages"][0]["content"] == "other"


def test_stored_differently_raised_by_the_driver_is_a_409(api, key, monkeypatch):
    def conflicting_put(**kwargs):
        raise StoredDifferently("already there")

    monkeypatch.setattr(get_store(), "put", conflicting_put)
    response = api.post(PROMPTS, key=key, json=doc())
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"
    assert not PromptVersion.objects.exists()


def test_identical_content_already_in_the_store_is_accepted(api, key):
    # A retried write whose first attempt stored the content but lost its row.
    first = get_store().put(
        workspace_id="default", name="welcome", version="1.0.0", content=serialize(doc()), author="x"
    )
    response = api.post(PROMPTS, key=key, json=doc())
    assert response.status_code == 201, response.content
    assert response.json()["commit_sha"] == first.commit_sha
