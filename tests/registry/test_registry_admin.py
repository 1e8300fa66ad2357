"""The Django admin for prompts, versions, labels and label history, used by a superuser."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion, VersionStatus
from registry.services import label_set, prompt_version_create
from tenancy.models import AuditLog
from tests.conftest import TEST_ACTOR

CHANGELISTS = ["prompt", "promptversion", "promptlabel", "promptlabelevent"]


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="ops", email="", password="pw-not-used")


@pytest.fixture
def browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def document(name: str, version: str, text: str = "Hello {{who}}") -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "messages": [{"role": "user", "content": text}],
        "variables": {"who": {"type": "string"}},
    }


def create(name: str, version: str, *, workspace: str = "default", **kwargs: Any) -> PromptVersion:
    return prompt_version_create(
        workspace_id=workspace, body=document(name, version, **kwargs), actor=TEST_ACTOR
    )


def set_label(name: str, label: str, version: str | None, *, workspace: str = "default") -> PromptLabel:
    return label_set(workspace_id=workspace, prompt_name=name, label=label, version=version, actor=TEST_ACTOR)


@pytest.fixture
def greeting(db) -> dict[str, PromptVersion]:
    """Prompt ``greeting`` with versions 1.0.0 and 1.1.0, ``production`` on 1.0.0."""
    versions = {v: create("greeting", v, text=f"Hello {{{{who}}}} ({v})") for v in ("1.0.0", "1.1.0")}
    set_label("greeting", "production", "1.0.0")
    return versions


def resolve(api, plaintext: str, name: str, label: str) -> Any:
    return api.get(f"/v1/prompts/{name}?label={label}", key=plaintext)


def fill(workspace, prompts: int) -> None:
    """``prompts`` prompts, each with two versions and two labels, half of them in another workspace."""
    workspace("acme")
    for i in range(prompts):
        ws = "acme" if i % 2 else "default"
        create(f"p{i}", "1.0.0", workspace=ws)
        create(f"p{i}", "2.0.0", workspace=ws)
        set_label(f"p{i}", "production", "1.0.0", workspace=ws)
        set_label(f"p{i}", "staging", "2.0.0", workspace=ws)
        set_label(f"p{i}", "production", "2.0.0", workspace=ws)


def test_the_registry_admin_requires_a_login(db):
    for model in CHANGELISTS:
        response = Client().get(f"/admin/registry/{model}/")
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelists_load(browser, greeting, model):
    response = browser.get(f"/admin/registry/{model}/")
    assert response.status_code == 200
    assert "greeting" in response.content.decode()


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelists_make_the_same_number_of_queries_for_more_rows(browser, workspace, model):
    fill(workspace, 2)
    with CaptureQueriesContext(connection) as few:
        assert browser.get(f"/admin/registry/{model}/").status_code == 200
    fill_more = [f"q{i}" for i in range(6)]
    for name in fill_more:
        create(name, "1.0.0")
        create(name, "1.1.0")
        set_label(name, "production", "1.0.0")
        set_label(name, "production", "1.1.0")
    with CaptureQueriesContext(connection) as many:
        assert browser.get(f"/admin/registry/{model}/").status_code == 200
    assert len(many) == len(few), "\n".join(q["sql"][:300] for q in many.captured_queries)


def test_the_prompt_list_shows_active_versions_latest_and_labels(browser, greeting):
    create("greeting", "1.10.0")
    set_label("greeting", "staging", "1.10.0")
    # A pending (not yet durable) version is neither counted nor latest.
    PromptVersion.objects.create(
        workspace_id="default",
        prompt=Prompt.objects.get(name="greeting"),
        version="9.0.0",
        document=document("greeting", "9.0.0"),
        sha256="0" * 64,
        driver="git",
        status=VersionStatus.PENDING,
    )
    response = browser.get("/admin/registry/prompt/")
    html = response.content.decode()
    assert '<td class="field-active_versions">3</td>' in html
    assert '<td class="field-latest_version">1.10.0</td>' in html
    assert "production → 1.0.0, staging → 1.10.0" in html


def test_the_prompt_list_searches_by_name_and_filters_by_workspace(browser, greeting, workspace):
    workspace("acme")
    create("farewell", "1.0.0", workspace="acme")
    found = browser.get("/admin/registry/prompt/?q=farew").content.decode()
    assert "farewell" in found and "greeting" not in found
    acme = browser.get("/admin/registry/prompt/?workspace__id__exact=acme").content.decode()
    assert "farewell" in acme and "greeting" not in acme


def test_prompts_are_read_only(browser, greeting):
    prompt = Prompt.objects.get(name="greeting")
    assert browser.get("/admin/registry/prompt/add/").status_code == 403
    page = browser.get(f"/admin/registry/prompt/{prompt.pk}/change/")
    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()
    assert browser.post(f"/admin/registry/prompt/{prompt.pk}/change/", {"name": "x"}).status_code == 403
    assert browser.post(f"/admin/registry/prompt/{prompt.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Prompt.objects.get(pk=prompt.pk).name == "greeting"


def test_the_version_list_shows_the_short_commit_and_filters(browser, greeting):
    version = greeting["1.0.0"]
    assert len(version.commit_sha) == 40
    html = browser.get("/admin/registry/promptversion/").content.decode()
    assert f'<td class="field-short_commit_sha">{version.commit_sha[:12]}</td>' in html
    assert version.commit_sha not in html
    for query in ("status__exact=active", "driver__exact=git", "workspace__id__exact=default"):
        assert "1.1.0" in browser.get(f"/admin/registry/promptversion/?{query}").content.decode()
    assert "1.1.0" not in browser.get("/admin/registry/promptversion/?status__exact=pending").content.decode()


def test_a_version_is_shown_read_only_with_its_document_pretty_printed(browser, greeting):
    version = greeting["1.0.0"]
    response = browser.get(f"/admin/registry/promptversion/{version.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&quot;name&quot;: &quot;greeting&quot;,\n  &quot;version&quot;: &quot;1.0.0&quot;" in html
    assert version.sha256 in html
    for field in ("version", "document", "status", "author", "commit_sha"):
        assert f'name="{field}"' not in html
    assert 'name="_save"' not in html
    assert "/delete/" not in html


def test_a_version_cannot_be_added_changed_or_deleted(browser, greeting):
    version = greeting["1.0.0"]
    assert browser.get("/admin/registry/promptversion/add/").status_code == 403
    changed = browser.post(
        f"/admin/registry/promptversion/{version.pk}/change/",
        {"version": "9.9.9", "status": "pending", "document": '{"name": "evil"}', "author": "mallory"},
    )
    assert changed.status_code == 403
    assert browser.get(f"/admin/registry/promptversion/{version.pk}/delete/").status_code == 403
    assert (
        browser.post(f"/admin/registry/promptversion/{version.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    listing = browser.get("/admin/registry/promptversion/").content.decode()
    assert "delete_selected" not in listing
    bulk = browser.post(
        "/admin/registry/promptversion/", {"action": "delete_selected", "_selected_action": [version.pk]}
    )
    assert bulk.status_code in (200, 302)
    fresh = PromptVersion.objects.get(pk=version.pk)
    assert (fresh.version, fresh.status, fresh.document, fresh.author) == (
        "1.0.0",
        VersionStatus.ACTIVE,
        version.document,
        version.author,
    )


def test_the_label_form_offers_only_that_prompts_active_versions(browser, greeting):
    other = create("other", "1.0.0")
    pending = PromptVersion.objects.create(
        workspace_id="default",
        prompt=Prompt.objects.get(name="greeting"),
        version="2.0.0-rc.1",
        document=document("greeting", "2.0.0-rc.1"),
        sha256="0" * 64,
        driver="git",
        status=VersionStatus.PENDING,
    )
    label = PromptLabel.objects.get(name="production")
    response = browser.get(f"/admin/registry/promptlabel/{label.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.fields) == ["version"]
    offered = set(form.fields["version"].queryset.values_list("pk", flat=True))
    assert offered == {greeting["1.0.0"].pk, greeting["1.1.0"].pk}
    assert other.pk not in offered and pending.pk not in offered
    html = response.content.decode()
    assert 'name="name"' not in html and 'name="prompt"' not in html

    refused = browser.post(f"/admin/registry/promptlabel/{label.pk}/change/", {"version": other.pk})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors
    assert PromptLabel.objects.get(pk=label.pk).version_id == greeting["1.0.0"].pk


def test_moving_a_label_in_the_admin_goes_through_the_service(
    browser, greeting, superuser, api, make_key, django_capture_on_commit_callbacks
):
    _, plaintext = make_key("read")
    before = resolve(api, plaintext, "greeting", "production")  # warms the prompt cache
    assert before.status_code == 200
    assert before.json()["version"]["version_tag"] == "1.0.0"
    label = PromptLabel.objects.get(name="production")

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            f"/admin/registry/promptlabel/{label.pk}/change/", {"version": greeting["1.1.0"].pk}
        )
    assert response.status_code == 302

    after = resolve(api, plaintext, "greeting", "production")
    assert after.status_code == 200
    assert after.json()["version"]["version_tag"] == "1.1.0"
    assert after.json()["content"]["messages"][0]["content"] == "Hello {{who}} (1.1.0)"

    fresh = PromptLabel.objects.get(pk=label.pk)
    assert (fresh.version_id, fresh.set_by) == (greeting["1.1.0"].pk, "ops")
    event = PromptLabelEvent.objects.filter(label="production").order_by("-id").first()
    assert (event.from_version_id, event.to_version_id, event.actor) == (
        greeting["1.0.0"].pk,
        greeting["1.1.0"].pk,
        "ops",
    )
    audit = AuditLog.objects.filter(action="label:create", user=superuser).get()
    assert (audit.workspace_id, audit.target_id, audit.prompt_name, audit.version_tag) == (
        "default",
        "production",
        "greeting",
        "1.1.0",
    )
    history = browser.get("/admin/registry/promptlabelevent/").content.decode()
    assert '<td class="field-actor">ops</td>' in history


def test_adding_a_label_in_the_admin_goes_through_the_service(
    browser, greeting, superuser, api, make_key, django_capture_on_commit_callbacks
):
    prompt = Prompt.objects.get(name="greeting")
    page = browser.get("/admin/registry/promptlabel/add/")
    assert page.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/admin/registry/promptlabel/add/", {"prompt": prompt.pk, "name": "staging", "version": ""}
        )
    assert response.status_code == 302
    label = PromptLabel.objects.get(name="staging")
    assert (label.workspace_id, label.version_id, label.set_by) == ("default", greeting["1.1.0"].pk, "ops")
    assert AuditLog.objects.filter(action="label:create", user=superuser, target_id="staging").count() == 1
    assert PromptLabelEvent.objects.filter(label="staging", from_version=None, actor="ops").count() == 1
    _, plaintext = make_key("read")
    assert resolve(api, plaintext, "greeting", "staging").json()["version"]["version_tag"] == "1.1.0"

    explicit = browser.post(
        "/admin/registry/promptlabel/add/",
        {"prompt": prompt.pk, "name": "canary-eu", "version": greeting["1.0.0"].pk},
    )
    assert explicit.status_code == 302
    assert PromptLabel.objects.get(name="canary-eu").version_id == greeting["1.0.0"].pk


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "production"},  # exists already: change it instead
        {"name": "bad label!"},
        {"name": "x", "version": "other"},  # a version of another prompt
    ],
)
def test_adding_an_invalid_label_is_refused(browser, greeting, fields):
    other = create("other", "1.0.0")
    data = {"prompt": Prompt.objects.get(name="greeting").pk, "name": "", "version": ""}
    data.update(fields)
    if data["version"] == "other":
        data["version"] = other.pk
    response = browser.post("/admin/registry/promptlabel/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert PromptLabel.objects.count() == 1
    assert AuditLog.objects.filter(action="label:create").exclude(api_key_name="pytest").count() == 0


def test_deleting_a_label_in_the_admin_goes_through_the_service(
    browser, greeting, superuser, api, make_key, django_capture_on_commit_callbacks
):
    _, plaintext = make_key("read")
    assert resolve(api, plaintext, "greeting", "production").status_code == 200
    label = PromptLabel.objects.get(name="production")
    confirm = browser.get(f"/admin/registry/promptlabel/{label.pk}/delete/")
    assert confirm.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"/admin/registry/promptlabel/{label.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not PromptLabel.objects.exists()
    assert resolve(api, plaintext, "greeting", "production").status_code == 404
    event = PromptLabelEvent.objects.order_by("-id").first()
    assert (event.label, event.from_version_id, event.to_version_id, event.actor) == (
        "production",
        greeting["1.0.0"].pk,
        None,
        "ops",
    )
    assert AuditLog.objects.filter(action="label:delete", user=superuser, target_id="production").count() == 1


def test_bulk_deleting_labels_goes_through_the_service(browser, greeting, superuser):
    set_label("greeting", "staging", "1.1.0")
    ids = list(PromptLabel.objects.values_list("pk", flat=True))
    response = browser.post(
        "/admin/registry/promptlabel/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not PromptLabel.objects.exists()
    assert AuditLog.objects.filter(action="label:delete", user=superuser).count() == 2
    assert PromptLabelEvent.objects.filter(to_version=None).count() == 2


def test_label_history_is_read_only(browser, greeting):
    set_label("greeting", "production", "1.1.0")
    event = PromptLabelEvent.objects.order_by("-id").first()
    html = browser.get("/admin/registry/promptlabelevent/").content.decode()
    assert '<td class="field-from_tag">1.0.0</td><td class="field-to_tag">1.1.0</td>' in html
    assert browser.get("/admin/registry/promptlabelevent/add/").status_code == 403
    assert browser.get(f"/admin/registry/promptlabelevent/{event.pk}/change/").status_code == 200
    assert browser.post(f"/admin/registry/promptlabelevent/{event.pk}/change/", {}).status_code == 403
    assert (
        browser.post(f"/admin/registry/promptlabelevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert PromptLabelEvent.objects.filter(pk=event.pk).exists()
