"""The registry end to end with DRIVER=s3 against a real S3-compatible server (moto's)."""

from __future__ import annotations

import hashlib
import json

import pytest

from registry.models import PromptVersion, VersionStatus
from registry.services import prompt_reconcile
from registry.storage import get_store

pytestmark = pytest.mark.django_db


def _doc(version: str, text: str = "Hello {{name}}") -> dict[str, object]:
    return {"name": "welcome", "version": version, "messages": [{"role": "user", "content": text}]}


def _object(s3, settings, key: str) -> bytes:
    return s3.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read()


def test_a_version_lands_in_the_bucket_under_its_workspace(api, make_key, s3, s3_settings):
    _, key = make_key("read,write")

    created = api.post("/v1/prompts", key=key, json=_doc("1.0.0"))

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["driver"] == "s3"
    assert body["commit_sha"] is None and body["tag"] is None
    stored = _object(s3, s3_settings, "prompts/default/welcome/1.0.0.json")
    assert json.loads(stored) == {**_doc("1.0.0")}
    assert body["sha256"] == hashlib.sha256(stored).hexdigest()
    fetched = api.get("/v1/prompts/welcome?variables[name]=Ada", key=key).json()
    assert fetched["content"]["messages"][0]["content"] == "Hello Ada"
    assert fetched["version"]["driver"] == "s3"


def test_same_name_and_version_in_two_workspaces_are_two_objects(api, make_key, s3, s3_settings):
    _, key_a = make_key("read,write", workspace="team-a")
    _, key_b = make_key("read,write", workspace="team-b")

    assert api.post("/v1/prompts", key=key_a, workspace="team-a", json=_doc("1.0.0", "A")).status_code == 201
    assert api.post("/v1/prompts", key=key_b, workspace="team-b", json=_doc("1.0.0", "B")).status_code == 201

    a = json.loads(_object(s3, s3_settings, "prompts/team-a/welcome/1.0.0.json"))
    b = json.loads(_object(s3, s3_settings, "prompts/team-b/welcome/1.0.0.json"))
    assert (a["messages"][0]["content"], b["messages"][0]["content"]) == ("A", "B")
    got = api.get("/v1/prompts/welcome", key=key_b, workspace="team-b").json()
    assert got["content"]["messages"][0]["content"] == "B"


def test_an_object_already_in_the_bucket_with_other_content_is_never_overwritten(
    api, make_key, s3, s3_settings
):
    _, key = make_key("read,write")
    original = b'{"name": "welcome", "version": "1.0.0", "messages": []}\n'
    s3.put_object(Bucket=s3_settings.S3_BUCKET, Key="prompts/default/welcome/1.0.0.json", Body=original)

    response = api.post("/v1/prompts", key=key, json=_doc("1.0.0"))

    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"
    assert _object(s3, s3_settings, "prompts/default/welcome/1.0.0.json") == original
    assert not PromptVersion.objects.filter(version="1.0.0").exists()


def test_reconcile_promotes_a_pending_row_whose_object_exists_and_drops_one_without(
    api, make_key, s3_settings
):
    _, key = make_key("read,write")
    assert api.post("/v1/prompts", key=key, json=_doc("1.0.0")).status_code == 201
    assert api.post("/v1/prompts", key=key, json=_doc("1.1.0")).status_code == 201
    # Simulate crashes: 1.1.0's object is stored but its row never became active; 1.2.0's row was
    # committed but the process died before the object was written.
    PromptVersion.objects.filter(version="1.1.0").update(status=VersionStatus.PENDING)
    ghost = PromptVersion.objects.get(version="1.1.0")
    ghost.pk, ghost.version = None, "1.2.0"
    ghost.save()
    assert get_store().get(workspace_id="default", name="welcome", version="1.2.0") is None

    report = prompt_reconcile(grace_seconds=0)

    assert report.promoted == ["default/welcome@1.1.0"]
    assert report.removed == ["default/welcome@1.2.0"]
    assert api.get("/v1/prompts/welcome", key=key).json()["version"]["version_tag"] == "1.1.0"


def test_deep_health_reports_the_s3_store(api, s3_settings):
    body = api.get("/health/deep").json()
    assert body["driverType"] == "s3"
    assert body["checks"]["driver"] == "ok"


def test_deep_health_is_degraded_when_the_bucket_is_gone(api, s3_settings):
    s3_settings.S3_BUCKET = "pm-no-such-bucket"
    get_store.cache_clear()
    response = api.get("/health/deep")
    assert response.status_code == 503
    assert response.json()["checks"]["driver"] == "error"
