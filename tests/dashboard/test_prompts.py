"""The Prompts pages: list and search, a prompt's document, versions and labels, moving a label
(editors only), a label's history, the diff between two versions and the render tryout."""

from __future__ import annotations

import difflib
from typing import Any

import pytest
from django.test import Client

from dashboard.views.prompts import as_input, by_precedence, diff_lines, parse_variable
from registry.models import PromptLabel, PromptLabelEvent, PromptVersion
from registry.services import label_set, prompt_version_create
from tenancy.models import AuditLog, Workspace
from tests.conftest import TEST_ACTOR

LIST = "/prompts"


def document(name: str, version: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": f"{name} for the support desk",
        "messages": [
            {"role": "system", "content": f"You help customers of {{{{company}}}} (v{version})."},
            {"role": "user", "content": "{{input}}"},
        ],
        "variables": {
            "input": {"type": "string", "required": True},
            "company": {"type": "string", "default": "Acme"},
        },
        "model_config": {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 1024},
    }
    body.update(extra)
    return body


def create(name: str, version: str, *, workspace: str = "acme", **extra: Any) -> PromptVersion:
    Workspace.objects.get_or_create(id=workspace, defaults={"name": workspace})
    return prompt_version_create(
        workspace_id=workspace, body=document(name, version, **extra), actor=TEST_ACTOR
    )


def set_label(name: str, label: str, version: str, *, workspace: str = "acme") -> PromptLabel:
    return label_set(workspace_id=workspace, prompt_name=name, label=label, version=version, actor=TEST_ACTOR)


def seeded(name: str = "support-reply", workspace: str = "acme") -> None:
    """Like the demo seed: three versions, production on an older one, staging on the newest."""
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        create(name, version, workspace=workspace)
    set_label(name, "production", "1.1.0", workspace=workspace)
    set_label(name, "staging", "1.2.0", workspace=workspace)


def target(name: str, label: str, workspace: str = "acme") -> str:
    return PromptLabel.objects.get(workspace_id=workspace, prompt__name=name, name=label).version.version


# --- pure helpers ---------------------------------------------------------------------------------


def test_diff_of_equal_texts_is_empty() -> None:
    assert diff_lines("a\nb\n", "a\nb\n") == []


def test_diff_lines_number_both_sides() -> None:
    rows = diff_lines("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(r.kind, r.old, r.new, r.text) for r in rows] == [
        ("hunk", None, None, "@@ -1,3 +1,4 @@"),
        ("same", 1, 1, "a"),
        ("del", 2, None, "b"),
        ("add", None, 2, "B"),
        ("same", 3, 3, "c"),
        ("add", None, 4, "d"),
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n".join(f"line {i}" for i in range(40)), "\n".join(f"line {i}" for i in range(40) if i % 13)),
        ("x", ""),
        ("", "y\nz"),
        ("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12", "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve"),
    ],
)
def test_diff_lines_agree_with_unified_diff(old: str, new: str) -> None:
    expected = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm=""))[2:]
    signs = {"same": " ", "add": "+", "del": "-"}
    got = [row.text if row.kind == "hunk" else signs[row.kind] + row.text for row in diff_lines(old, new)]
    assert got == expected


def test_versions_sort_by_semver_precedence() -> None:
    assert by_precedence(["1.9.0", "1.10.0", "1.10.0-rc.1", "0.1.0"]) == [
        "1.10.0",
        "1.10.0-rc.1",
        "1.9.0",
        "0.1.0",
    ]


def test_variable_values_parse_by_declared_type() -> None:
    assert parse_variable("3.5", {"type": "number"}) == 3.5
    assert parse_variable("true", {"type": "boolean"}) is True
    assert parse_variable('["a"]', {"type": "array"}) == ["a"]
    assert parse_variable('{"k": 1}', {"type": "object"}) == {"k": 1}
    assert parse_variable("{not json", {"type": "string"}) == "{not json"
    assert parse_variable("plain", None) == "plain"
    for raw, kind in (("three", "number"), ("yes", "boolean"), ('{"a": 1}', "array"), ("[1]", "object")):
        with pytest.raises(ValueError, match="must be"):
            parse_variable(raw, {"type": kind})
    assert as_input(["a", 1]) == '["a", 1]'
    assert as_input("text") == "text"


# --- the list -------------------------------------------------------------------------------------


def test_list_shows_latest_version_and_labels(client_as) -> None:
    seeded()
    create("summarize", "0.1.0")
    response = client_as("viewer", "acme").get(LIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/prompts/support-reply"' in html
    assert "support-reply for the support desk" in html
    row = html.split('href="/prompts/support-reply"')[1].split("</tr>")[0]
    assert '<td class="mono">1.2.0</td>' in row
    assert 'production</span><span class="mono">1.1.0' in row
    assert 'staging</span><span class="mono">1.2.0' in row
    assert '<td class="num">3</td>' in row
    assert 'href="/prompts/summarize"' in html


def test_list_empty_state(client_as) -> None:
    response = client_as("viewer", "acme").get(LIST)
    assert response.status_code == 200
    assert "No prompts yet" in response.content.decode()
    assert "/v1/prompts" in response.content.decode()


def test_search_narrows_rows_like_the_api(client_as, api, make_key) -> None:
    for name in ("support-reply", "support-escalate", "summarize"):
        create(name, "1.0.0")
    client = client_as("viewer", "acme")
    html = client.get(LIST, {"q": "SUPPORT"}).content.decode()
    assert "/prompts/support-reply" in html and "/prompts/support-escalate" in html
    assert "/prompts/summarize" not in html
    key = make_key("read", workspace="acme")[1]
    names = [
        item["name"] for item in api.get("/v1/prompts?q=SUPPORT", key=key, workspace="acme").json()["items"]
    ]
    assert sorted(names) == ["support-escalate", "support-reply"]
    nothing = client.get(LIST, {"q": "nomatch"}).content.decode()
    assert "No prompt matches this search." in nothing


def test_overlong_search_is_a_message_not_an_error(client_as) -> None:
    create("support-reply", "1.0.0")
    response = client_as("viewer", "acme").get(LIST, {"q": "x" * 300})
    assert response.status_code == 200
    assert "Search is limited to 256 characters." in response.content.decode()


def test_list_pages_and_costs_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    for i in range(55):
        create(f"prompt-{i:02d}", "1.0.0")
        if i < 30:
            create(f"prompt-{i:02d}", "1.1.0")
            set_label(f"prompt-{i:02d}", "production", "1.0.0")
    client = client_as("viewer", "acme")
    client.get(LIST)  # warm the session
    with django_assert_max_num_queries(8):
        first = client.get(LIST).content.decode()
    assert "/prompts/prompt-49" in first and "/prompts/prompt-50" not in first
    assert "Page 1 of 2" in first
    second = client.get(LIST, {"page": 2}).content.decode()
    assert "/prompts/prompt-54" in second and "/prompts/prompt-00" not in second


def test_list_never_shows_another_workspace(client_as) -> None:
    create("ours", "1.0.0", workspace="acme")
    create("theirs", "1.0.0", workspace="globex")
    html = client_as("viewer", "acme").get(LIST).content.decode()
    assert "/prompts/ours" in html and "theirs" not in html


# --- a prompt -------------------------------------------------------------------------------------


def test_prompt_page_shows_document_versions_and_labels(client_as) -> None:
    seeded()
    response = client_as("viewer", "acme").get("/prompts/support-reply")
    assert response.status_code == 200
    html = response.content.decode()
    # The latest version's document: messages, variables, model config.
    assert "You help customers of {{company}} (v1.2.0)." in html
    assert 'class="badge role">system' in html and 'class="badge role">user' in html
    assert "gpt-4o-mini" in html and "max_tokens" in html
    assert '<td class="mono">company</td>' in html or ">company<" in html
    # Versions with commit sha and tag.
    version = PromptVersion.objects.get(prompt__name="support-reply", version="1.1.0")
    assert version.commit_sha and version.tag
    assert version.commit_sha[:12] in html and version.tag in html
    # The labels table: label · resolves to · set by · updated.
    labels = html.split('id="labels"')[1].split("</table>")[0]
    for header in ("Label", "Resolves to", "Set by", "Updated"):
        assert f'<th scope="col">{header}</th>' in labels
    assert 'data-label="production"' in labels and "1.1.0</a>" in labels and "pytest" in labels
    # A viewer sees no move form.
    assert 'name="label"' not in html and "Move a label" not in html


def test_prompt_page_shows_a_chosen_version(client_as) -> None:
    seeded()
    client = client_as("viewer", "acme")
    html = client.get("/prompts/support-reply", {"version": "1.0.0"}).content.decode()
    assert "(v1.0.0)." in html and "(v1.2.0)." not in html
    missing = client.get("/prompts/support-reply", {"version": "9.9.9"})
    assert missing.status_code == 200
    assert "Version 9.9.9 does not exist for this prompt." in missing.content.decode()


def test_text_prompts_show_their_template(client_as) -> None:
    prompt_version_create(
        workspace_id="acme",
        body={"name": "haiku", "version": "1.0.0", "type": "text", "template": "A haiku about {{topic}}"},
        actor=TEST_ACTOR,
    )
    html = client_as("viewer", "acme").get("/prompts/haiku").content.decode()
    assert "A haiku about {{topic}}" in html and "No variables declared." in html


def test_editor_sees_the_move_form(client_as) -> None:
    seeded()
    html = client_as("editor", "acme").get("/prompts/support-reply").content.decode()
    assert 'action="/prompts/support-reply/labels"' in html
    assert "data-confirm=" in html


def test_prompt_page_costs_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    for i in range(30):
        create("busy", f"1.{i}.0")
        set_label("busy", f"env-{i}", f"1.{i}.0")
    client = client_as("viewer", "acme")
    client.get("/prompts/busy")
    with django_assert_max_num_queries(9):
        html = client.get("/prompts/busy").content.decode()
    assert "env-29" in html and "1.29.0" in html
    with django_assert_max_num_queries(7):
        client.get("/prompts/busy/diff", {"from": "1.0.0", "to": "1.29.0"})
    with django_assert_max_num_queries(6):
        client.get("/prompts/busy/render", {"render": "1", "variables[input]": "hi"})


def test_another_workspaces_prompt_is_404(client_as) -> None:
    seeded(workspace="globex")
    client = client_as("editor", "acme")
    for path in (
        "/prompts/support-reply",
        "/prompts/support-reply/diff",
        "/prompts/support-reply/render",
        "/prompts/support-reply/labels/production/history",
    ):
        assert client.get(path).status_code == 404, path
    response = client.post("/prompts/support-reply/labels", {"label": "production", "version": "1.0.0"})
    assert response.status_code == 404
    assert target("support-reply", "production", "globex") == "1.1.0"


def test_unknown_and_malformed_names_are_404(client_as) -> None:
    client = client_as("viewer", "acme")
    assert client.get("/prompts/nothing-here").status_code == 404
    assert client.get("/prompts/bad%20name").status_code == 404


# --- moving a label -------------------------------------------------------------------------------


def test_editor_moves_a_label(client_as, api, make_key) -> None:
    seeded()
    key = make_key("read", workspace="acme")[1]

    def resolves() -> str:
        path = "/v1/prompts/support-reply?label=production&render=false"
        return api.get(path, key=key, workspace="acme").json()["version"]["version_tag"]

    assert resolves() == "1.1.0"
    client = client_as("editor", "acme")
    response = client.post("/prompts/support-reply/labels", {"label": "production", "version": "1.2.0"})
    assert response.status_code == 302
    assert response["Location"] == "/prompts/support-reply#labels"
    assert target("support-reply", "production") == "1.2.0"
    assert resolves() == "1.2.0"
    event = PromptLabelEvent.objects.filter(label="production").first()
    assert (event.from_version.version, event.to_version.version) == ("1.1.0", "1.2.0")
    assert event.actor.startswith("editor-acme")
    audit = AuditLog.objects.filter(action="label:create", target_id="production").latest("id")
    assert audit.workspace_id == "acme"
    page = client.get("/prompts/support-reply").content.decode()
    assert "Label production moved from 1.1.0 to 1.2.0." in page


def test_editor_creates_a_new_label(client_as) -> None:
    seeded()
    response = client_as("admin", "acme").post(
        "/prompts/support-reply/labels", {"label": "canary", "version": "1.0.0"}, follow=True
    )
    assert response.status_code == 200
    assert "Label canary created at 1.0.0." in response.content.decode()
    assert target("support-reply", "canary") == "1.0.0"


def test_viewer_cannot_move_a_label(client_as) -> None:
    seeded()
    response = client_as("viewer", "acme").post(
        "/prompts/support-reply/labels", {"label": "production", "version": "1.2.0"}
    )
    assert response.status_code == 403
    assert target("support-reply", "production") == "1.1.0"
    assert PromptLabelEvent.objects.filter(label="production").count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"label": "production", "version": "9.9.9"}, "Version not found for this prompt"),
        ({"label": "production", "version": "not-semver"}, "version_tag must be semantic"),
        ({"label": "bad label!", "version": "1.0.0"}, "name must contain only letters"),
        ({"label": "..", "version": "1.0.0"}, "name must contain only letters"),
        ({"label": "", "version": "1.0.0"}, "Give the label a name"),
        ({"label": "production"}, "Choose the version"),
    ],
)
def test_bad_label_moves_show_a_message(client_as, data: dict[str, str], message: str) -> None:
    seeded()
    response = client_as("editor", "acme").post("/prompts/support-reply/labels", data)
    assert response.status_code == 422
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html
    assert target("support-reply", "production") == "1.1.0"


def test_label_move_url_takes_no_get(client_as) -> None:
    seeded()
    assert client_as("editor", "acme").get("/prompts/support-reply/labels").status_code == 405


# --- a label's history ----------------------------------------------------------------------------


def test_label_history_lists_every_move(client_as) -> None:
    seeded()
    set_label("support-reply", "production", "1.2.0")
    set_label("support-reply", "production", "1.0.0")
    response = client_as("viewer", "acme").get("/prompts/support-reply/labels/production/history")
    assert response.status_code == 200
    html = response.content.decode()
    rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 3
    assert ">move<" in rows[0] and "1.2.0" in rows[0] and "1.0.0" in rows[0]
    assert ">create<" in rows[2]
    assert "Resolves to" in html and "1.0.0</a>" in html


def test_history_of_an_unknown_label_is_404(client_as) -> None:
    seeded()
    client = client_as("viewer", "acme")
    assert client.get("/prompts/support-reply/labels/nope/history").status_code == 404
    assert client.get("/prompts/support-reply/labels/../history").status_code == 404


def test_history_pages_with_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    for i in range(2):
        create("flip", f"1.{i}.0")
    for i in range(60):
        set_label("flip", "production", f"1.{i % 2}.0")
    client = client_as("viewer", "acme")
    with django_assert_max_num_queries(8):
        first = client.get("/prompts/flip/labels/production/history").content.decode()
    assert "Page 1 of 2" in first
    second = client.get("/prompts/flip/labels/production/history", {"page": 2}).content.decode()
    assert second.count("<tr>") == 1 + 10


# --- the diff -------------------------------------------------------------------------------------


def test_diff_defaults_to_the_two_newest_versions(client_as) -> None:
    seeded()
    response = client_as("viewer", "acme").get("/prompts/support-reply/diff")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="diff-del"' in html and 'class="diff-add"' in html
    removed = [chunk.split("</del>")[0] for chunk in html.split("<del>")[1:]]
    added = [chunk.split("</ins>")[0] for chunk in html.split("<ins>")[1:]]
    assert any("(v1.1.0)." in line for line in removed) and any("(v1.2.0)." in line for line in added)
    assert "+2</span>" in html and "−2</span>" in html


def test_diff_between_chosen_versions_escapes_content(client_as) -> None:
    create("xss", "1.0.0")
    create("xss", "2.0.0", description="<script>alert(1)</script>")
    client = client_as("viewer", "acme")
    html = client.get("/prompts/xss/diff", {"from": "1.0.0", "to": "2.0.0"}).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    same = client.get("/prompts/xss/diff", {"from": "2.0.0", "to": "2.0.0"}).content.decode()
    assert "The two versions are identical." in same


def test_diff_with_an_unknown_version_says_so(client_as) -> None:
    seeded()
    response = client_as("viewer", "acme").get("/prompts/support-reply/diff", {"from": "0.0.1", "to": "x"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "From: version 0.0.1 does not exist" in html and "To: version x does not exist" in html


# --- render tryout --------------------------------------------------------------------------------


def render(client: Client, name: str = "support-reply", **params: str) -> str:
    response = client.get(f"/prompts/{name}/render", params)
    assert response.status_code == 200
    return response.content.decode()


def test_render_form_has_one_input_per_variable_with_defaults(client_as) -> None:
    seeded()
    html = render(client_as("viewer", "acme"))
    assert 'name="variables[input]"' in html and 'name="variables[company]"' in html
    assert ">Acme</textarea>" in html
    assert "data-rendered" not in html


def test_viewer_renders_a_version(client_as) -> None:
    seeded()
    html = render(
        client_as("viewer", "acme"),
        version="1.0.0",
        render="1",
        **{"variables[input]": "Where is <my> order?", "variables[company]": "Globex"},
    )
    output = html.split("data-rendered")[1]
    assert "You help customers of Globex (v1.0.0)." in output
    assert "Where is &lt;my&gt; order?" in output
    assert "gpt-4o-mini" in output


def test_render_errors_are_shown_plainly(client_as) -> None:
    seeded()
    client = client_as("viewer", "acme")
    # The API's words, as the render endpoint answers.
    assert "Missing required variables: input" in render(client, render="1")
    create("counter", "1.0.0", variables={"n": {"type": "number", "required": True}})
    assert "n must be a number such as 3 or 0.5." in render(
        client, "counter", render="1", **{"variables[n]": "x"}
    )
    ok = render(client, "counter", render="1", **{"variables[n]": "3"})
    assert "data-rendered" in ok
    assert "Version 7.0.0 does not exist" in render(client, version="7.0.0")


def test_a_template_that_does_not_parse_is_a_message(client_as) -> None:
    create("broken", "1.0.0", messages=[{"role": "user", "content": "a {{#a}}b{{/c}}"}], variables={})
    html = render(client_as("viewer", "acme"), "broken", render="1")
    assert "The template does not parse: Section end tag mismatch" in html


def test_render_of_a_text_prompt(client_as) -> None:
    prompt_version_create(
        workspace_id="acme",
        body={
            "name": "haiku",
            "version": "1.0.0",
            "type": "text",
            "template": "A haiku about {{topic}}",
            "variables": {"topic": {"type": "string"}, "formal": {"type": "boolean"}},
        },
        actor=TEST_ACTOR,
    )
    html = render(client_as("viewer", "acme"), "haiku", render="1", **{"variables[topic]": "rain"})
    assert "A haiku about rain" in html.split("data-rendered")[1]
    assert '<option value="true"' in html
