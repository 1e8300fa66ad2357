"""``/v1/prompts``: creating immutable versions, validation, listing, search and resolution.

Behaviour through the HTTP API against the real database and the real Git store (upstream §2.2,
§3.1-§3.3; the upstream ``prompts`` integration tests and the e2e prompt bullets).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.utils import timezone

from registry.models import Prompt, PromptVersion, VersionStatus
from registry.storage import get_store
from tenancy.models import AuditLog

PROMPTS = "/v1/prompts"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture
def key(make_key):
    return make_key("read,write", name="writer")[1]


def doc(name: str = "welcome", version: str = "1.0.0", **extra) -> dict:
    body = {
        "name": name,
        "version": version,
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hello {{name}}!"},
        ],
    }
    body.update(extra)
    return body


def create(api, key, body=None, **kwargs):
    response = api.post(PROMPTS, key=key, json=body if body is not None else doc(), **kwargs)
    assert response.status_code == 201, response.content
    return response.json()


def fields_of(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["error"] == "Validation failed"
    assert body["detailsType"] == "fields"
    return body["details"]["fields"]


def latest_version(api, key, name: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api.get(f"{PROMPTS}/{name}?{query}", key=key)
    assert response.status_code == 200, response.content
    return response.json()["version"]["version_tag"]


# --- POST /v1/prompts ---


def test_create_returns_the_version_record(api, key):
    before = int(time.time())
    body = create(api, key, doc("welcome", "1.0.0"))
    assert body["name"] == "welcome"
    assert body["version_tag"] == "1.0.0"
    assert HEX40.match(body["commit_sha"]), body
    assert body["tag"] == "prompts/welcome/1.0.0"
    assert body["driver"] == "git"
    assert body["author"] == "writer"
    assert before - 1 <= body["created_at"] <= time.time() + 1
    assert re.fullmatch(r"[0-9a-f]{64}", body["sha256"])


def test_create_stores_the_document_in_git_with_its_hash_and_commit(api, key):
    body = create(api, key, doc("welcome", "1.0.0"))
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert stored is not None
    assert body["sha256"] == hashlib.sha256(stored.content).hexdigest()
    assert stored.record.commit_sha == body["commit_sha"]
    assert stored.record.tag == "prompts/welcome/1.0.0"
    # Upstream's file format: the validated body, pretty-printed with a 2-space indent.
    assert stored.content.decode().startswith('{\n  "name": "welcome",')
    assert json.loads(stored.content) == doc("welcome", "1.0.0")


def test_create_leaves_one_active_index_row(api, key):
    body = create(api, key)
    row = PromptVersion.objects.select_related("prompt").get()
    assert row.status == VersionStatus.ACTIVE
    assert row.prompt.name == "welcome"
    assert row.version == "1.0.0"
    assert row.workspace_id == "default"
    assert row.commit_sha == body["commit_sha"]
    assert row.sha256 == body["sha256"]
    assert row.document == doc()


def test_create_is_audited(api, key):
    create(api, key, doc("welcome", "1.2.3"))
    entry = AuditLog.objects.get(action="create_prompt")
    assert entry.prompt_name == "welcome"
    assert entry.version_tag == "1.2.3"
    assert entry.api_key_name == "writer"
    assert entry.workspace_id == "default"


def test_a_second_version_is_a_new_commit(api, key):
    first = create(api, key, doc("welcome", "1.0.0"))
    second = create(api, key, doc("welcome", "1.1.0"))
    assert first["commit_sha"] != second["commit_sha"]
    assert second["tag"] == "prompts/welcome/1.1.0"
    assert PromptVersion.objects.filter(status=VersionStatus.ACTIVE).count() == 2
    assert Prompt.objects.count() == 1


def test_a_duplicate_version_is_a_409_with_the_name_and_version(api, key):
    create(api, key, doc("welcome", "1.0.0"))
    changed = doc("welcome", "1.0.0", messages=[{"role": "user", "content": "other"}])
    response = api.post(PROMPTS, key=key, json=changed)
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "CONFLICT"
    assert body["error"] == "Prompt already exists"
    assert body["details"] == {"name": "welcome", "version": "1.0.0"}
    assert body["detailsType"] == "context"
    # Immutable: the first content is still what is served and stored.
    content = api.get(f"{PROMPTS}/welcome?render=false", key=key).json()["content"]
    assert content["messages"] == doc()["messages"]
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert json.loads(stored.content)["messages"] == doc()["messages"]
    assert PromptVersion.objects.count() == 1
    assert AuditLog.objects.filter(action="create_prompt").count() == 1


def test_an_identical_duplicate_is_also_a_409(api, key):
    create(api, key)
    response = api.post(PROMPTS, key=key, json=doc())
    assert response.status_code == 409
    assert response.json()["details"] == {"name": "welcome", "version": "1.0.0"}


def _long(n: int) -> str:
    return "a" * n


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({k: v for k, v in doc().items() if k != "name"}, '"name" is required', id="no-name"),
        pytest.param(
            {k: v for k, v in doc().items() if k != "version"}, '"version" is required', id="no-version"
        ),
        pytest.param(
            {k: v for k, v in doc().items() if k != "messages"}, '"messages" is required', id="no-messages"
        ),
        pytest.param(
            doc(name="hello world"),
            "name must contain only letters, numbers, hyphens, and underscores",
            id="name-space",
        ),
        pytest.param(
            doc(name="a.b"),
            "name must contain only letters, numbers, hyphens, and underscores",
            id="name-dot",
        ),
        pytest.param(
            doc(name="héllo"),
            "name must contain only letters, numbers, hyphens, and underscores",
            id="name-unicode",
        ),
        pytest.param(
            doc(name=""), "name must contain only letters, numbers, hyphens, and underscores", id="name-empty"
        ),
        pytest.param(
            doc(name="a\n"),
            "name must contain only letters, numbers, hyphens, and underscores",
            id="name-newline",
        ),
        pytest.param(doc(name=42), '"name" must be a string', id="name-number"),
        pytest.param(
            doc(name=_long(129)),
            '"name" length must be less than or equal to 128 characters long',
            id="name-129",
        ),
        pytest.param(
            doc(messages=[{"role": "robot", "content": "x"}]),
            '"messages[0].role" must be one of [system, user, assistant]',
            id="bad-role",
        ),
        pytest.param(
            doc(messages=[{"content": "x"}]),
            '"messages[0].role" must be one of [system, user, assistant]',
            id="no-role",
        ),
        pytest.param(
            doc(messages=[{"role": "user", "content": ""}]),
            '"messages[0].content" is not allowed to be empty',
            id="empty-content",
        ),
        pytest.param(doc(messages=[{"role": "user"}]), '"messages[0].content" is required', id="no-content"),
        pytest.param(
            doc(messages=[{"role": "user", "content": 5}]),
            '"messages[0].content" must be a string',
            id="content-number",
        ),
        pytest.param(
            doc(messages=[{"role": "user", "content": _long(100_001)}]),
            '"messages[0].content" length must be less than or equal to 100000 characters long',
            id="content-too-long",
        ),
        pytest.param(
            doc(messages=[{"role": "user", "content": "x", "name": _long(65)}]),
            '"messages[0].name" must be a string of at most 64 characters',
            id="message-name-65",
        ),
        pytest.param(doc(messages=[]), '"messages" must contain at least 1 items', id="no-message"),
        pytest.param(doc(messages="hi"), '"messages" must be an array', id="messages-string"),
        pytest.param(doc(messages=["hi"]), '"messages[0]" must be of type object', id="message-string"),
        pytest.param(
            doc(model_config={"temperature": 3}),
            '"model_config.temperature" must be less than or equal to 2',
            id="temperature-3",
        ),
        pytest.param(
            doc(model_config={"temperature": -0.1}),
            '"model_config.temperature" must be greater than or equal to 0',
            id="temperature-negative",
        ),
        pytest.param(
            doc(model_config={"temperature": "hot"}),
            '"model_config.temperature" must be a number',
            id="temperature-string",
        ),
        pytest.param(
            doc(model_config={"max_tokens": 0}),
            '"model_config.max_tokens" must be greater than or equal to 1',
            id="max-tokens-0",
        ),
        pytest.param(
            doc(model_config={"max_tokens": 1.5}),
            '"model_config.max_tokens" must be an integer',
            id="max-tokens-1.5",
        ),
        pytest.param(
            doc(model_config={"max_tokens": True}),
            '"model_config.max_tokens" must be an integer',
            id="max-tokens-bool",
        ),
        pytest.param(
            doc(model_config={"top_p": 1.01}),
            '"model_config.top_p" must be less than or equal to 1',
            id="top-p",
        ),
        pytest.param(
            doc(model_config={"frequency_penalty": -2.5}),
            '"model_config.frequency_penalty" must be greater than or equal to -2',
            id="frequency-penalty",
        ),
        pytest.param(
            doc(model_config={"presence_penalty": 2.5}),
            '"model_config.presence_penalty" must be less than or equal to 2',
            id="presence-penalty",
        ),
        pytest.param(
            doc(model_config={"model": 4}), '"model_config.model" must be a string', id="model-number"
        ),
        pytest.param(
            doc(model_config="gpt-4o"), '"model_config" must be of type object', id="model-config-str"
        ),
        pytest.param(
            doc(tags=[f"t{i}" for i in range(21)]),
            '"tags" must contain less than or equal to 20 items',
            id="tags-21",
        ),
        pytest.param(
            doc(tags=[_long(65)]), '"tags[0]" must be a string of at most 64 characters', id="tag-65"
        ),
        pytest.param(doc(tags=[1]), '"tags[0]" must be a string of at most 64 characters', id="tag-number"),
        pytest.param(doc(tags="greeting"), '"tags" must be an array', id="tags-string"),
        pytest.param(
            doc(variables={"name": {"required": True}}), '"variables.name.type" is required', id="var-no-type"
        ),
        pytest.param(
            doc(variables={"name": {"type": "date"}}),
            '"variables.name.type" must be one of [string, number, boolean, array, object]',
            id="var-bad-type",
        ),
        pytest.param(
            doc(variables={"name": {"type": "string", "required": "yes"}}),
            '"variables.name.required" must be a boolean',
            id="var-required-string",
        ),
        pytest.param(
            doc(variables={"name": "string"}), '"variables.name" must be of type object', id="var-str"
        ),
        pytest.param(doc(variables=["name"]), '"variables" must be of type object', id="variables-array"),
        pytest.param(
            doc(ollama={"keep_alive": _long(17)}),
            '"ollama.keep_alive" must be a string of at most 16 characters',
            id="ollama-keep-alive",
        ),
        pytest.param(
            doc(ollama={"options": []}), '"ollama.options" must be of type object', id="ollama-options"
        ),
        pytest.param(
            doc(ollama={"format": 1}), '"ollama.format" must be a string or an object', id="ollama-format"
        ),
        pytest.param(doc(type="image"), '"type" must be one of [chat, text]', id="bad-type"),
    ],
)
def test_an_invalid_document_is_a_422_with_a_joi_style_message(api, key, body, message):
    fields = fields_of(api.post(PROMPTS, key=key, json=body))
    assert message in fields, fields
    assert not PromptVersion.objects.exists()
    assert not Prompt.objects.exists()
    assert not (settings.GIT_ROOT / "default.git").exists()


@pytest.mark.parametrize(
    "version",
    [
        "1.0",
        "1",
        "v1.0.0",
        "1.0.0.0",
        "01.0.0",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0+",
        " 1.0.0",
        "1.0.0\n",
        "latest",
        "",
    ],
)
def test_a_version_that_is_not_semver_is_refused(api, key, version):
    fields = fields_of(api.post(PROMPTS, key=key, json=doc(version=version)))
    assert len(fields) == 1, fields
    assert fields[0].startswith("version must be semantic (e.g., 1.0.0"), fields
    assert not PromptVersion.objects.exists()


def test_a_version_that_is_not_a_string_is_refused(api, key):
    fields = fields_of(api.post(PROMPTS, key=key, json=doc(version=1)))
    assert fields[0].startswith("version must be semantic"), fields


def test_a_version_longer_than_64_characters_is_refused(api, key):
    version = "1.0.0-" + "a" * 59  # 65 characters
    fields = fields_of(api.post(PROMPTS, key=key, json=doc(version=version)))
    assert fields[0].startswith("version must be semantic"), fields
    ok = "1.0.0-" + "a" * 58
    assert api.post(PROMPTS, key=key, json=doc(version=ok)).status_code == 201


@pytest.mark.parametrize("version", ["1.0.0-rc.lock", "1.0.0+build.lock", "1.0.0-lock.lock"])
def test_a_version_ending_in_dot_lock_is_refused(api, key, version):
    # Git cannot name a tag ".lock"; the version would otherwise fail in the store (a 5xx).
    fields = fields_of(api.post(PROMPTS, key=key, json=doc(version=version)))
    assert fields == ['version cannot end with ".lock"']
    assert not (settings.GIT_ROOT / "default.git").exists()


def test_every_problem_is_reported_at_once(api, key):
    body = {"name": "bad name", "version": "1.0", "messages": [], "model_config": {"temperature": 3}}
    fields = fields_of(api.post(PROMPTS, key=key, json=body))
    assert fields == [
        "name must contain only letters, numbers, hyphens, and underscores",
        "version must be semantic (e.g., 1.0.0 or 1.1.0-rc.1)",
        '"messages" must contain at least 1 items',
        '"model_config.temperature" must be less than or equal to 2',
    ]


def test_the_boundaries_are_accepted(api, key):
    body = doc(
        _long(128),
        "1.0.0",
        messages=[{"role": "user", "content": _long(100_000), "name": _long(64)}],
        model_config={
            "model": "gpt-4o",
            "temperature": 2,
            "max_tokens": 1,
            "top_p": 0,
            "frequency_penalty": -2,
            "presence_penalty": 2,
            "seed": 7,
        },
        tags=[_long(64)] * 20,
        ollama={"options": {"num_ctx": 4096}, "keep_alive": _long(16), "format": {"type": "object"}},
    )
    record = create(api, key, body)
    assert record["name"] == _long(128)
    content = api.get(f"{PROMPTS}/{_long(128)}", key=key).json()["content"]
    assert content["model_config"]["seed"] == 7  # extra model_config keys are kept
    assert content["ollama"]["format"] == {"type": "object"}


def test_max_tokens_may_be_a_whole_float(api, key):
    # Joi's integer() accepts 10.0 (JSON does not distinguish it from 10).
    assert api.post(PROMPTS, key=key, json=doc(model_config={"max_tokens": 10.0})).status_code == 201


@pytest.mark.parametrize("payload", ["[]", '"welcome"', "42", "null", "true", "[{}]"])
def test_a_body_that_is_not_an_object_is_a_422(api, key, payload):
    response = api.post(PROMPTS, key=key, data=payload)
    fields = fields_of(response)
    assert fields == ['"value" must be of type object'], fields


def test_an_empty_body_is_a_422_not_a_500(api, key):
    fields = fields_of(api.post(PROMPTS, key=key))
    assert '"name" is required' in fields
    assert '"version" is required' in fields


@pytest.mark.parametrize("payload", ['{"name": "x",', "{name: 'x'}", "not json", '{"a": 1}}'])
def test_invalid_json_is_a_400(api, key, payload):
    response = api.post(PROMPTS, key=key, data=payload)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["error"] == "Bad Request"
    assert body["message"] == "Invalid JSON body"
    assert not PromptVersion.objects.exists()


def test_unknown_top_level_keys_are_stored_and_returned(api, key):
    body = doc(owner="team-a", metadata={"ticket": "PM-1", "nested": [1, {"x": None}]}, description="hi")
    create(api, key, body)
    content = api.get(f"{PROMPTS}/welcome", key=key).json()["content"]
    assert content["owner"] == "team-a"
    assert content["metadata"] == {"ticket": "PM-1", "nested": [1, {"x": None}]}
    assert content["description"] == "hi"
    stored = json.loads(get_store().get(workspace_id="default", name="welcome", version="1.0.0").content)
    assert stored["owner"] == "team-a"
    assert stored["metadata"]["nested"] == [1, {"x": None}]


def test_extra_message_keys_are_kept(api, key):
    messages = [{"role": "user", "content": "hi", "name": "bob", "cache_control": {"type": "ephemeral"}}]
    create(api, key, doc(messages=messages))
    assert api.get(f"{PROMPTS}/welcome", key=key).json()["content"]["messages"] == messages


def test_required_defaults_to_false_in_the_stored_document(api, key):
    variables = {
        "name": {"type": "string"},
        "count": {"type": "number", "required": True, "default": 3},
    }
    create(api, key, doc(variables=variables))
    expected = {
        "name": {"type": "string", "required": False},
        "count": {"type": "number", "required": True, "default": 3},
    }
    content = api.get(f"{PROMPTS}/welcome?render=false", key=key).json()["content"]
    assert content["variables"] == expected
    stored = json.loads(get_store().get(workspace_id="default", name="welcome", version="1.0.0").content)
    assert stored["variables"] == expected


@pytest.mark.parametrize(
    "version", ["1.5.0-rc.1", "2.0.0+build.7", "1.0.0-alpha.beta+exp.sha.5114f85", "0.0.0"]
)
def test_semver_versions_are_accepted(api, key, version):
    record = create(api, key, doc("welcome", version))
    assert record["version_tag"] == version
    assert record["tag"] == f"prompts/welcome/{version}"
    response = api.get(f"{PROMPTS}/welcome?{urlencode({'version': version})}", key=key)
    assert response.status_code == 200, response.content
    assert response.json()["content"]["version"] == version
    assert get_store().get(workspace_id="default", name="welcome", version=version) is not None


def test_versions_differing_only_in_build_metadata_are_distinct(api, key):
    create(api, key, doc("welcome", "1.0.0+a"))
    create(api, key, doc("welcome", "1.0.0+b"))
    assert PromptVersion.objects.count() == 2


# --- text prompts ---


def test_a_text_prompt_is_created_and_returned(api, key):
    body = {"name": "summary", "version": "1.0.0", "type": "text", "template": "Summarise: {{text}}"}
    record = create(api, key, body)
    assert record["tag"] == "prompts/summary/1.0.0"
    content = api.get(f"{PROMPTS}/summary", key=key).json()["content"]
    assert content == body
    rendered = api.get(f"{PROMPTS}/summary?variables[text]=hello", key=key).json()["content"]
    assert rendered["template"] == "Summarise: hello"
    assert "messages" not in rendered


def test_a_text_prompt_with_messages_is_refused(api, key):
    body = {"name": "s", "version": "1.0.0", "type": "text", "template": "x", "messages": doc()["messages"]}
    fields = fields_of(api.post(PROMPTS, key=key, json=body))
    assert fields == ['"messages" is not allowed for text prompts (use "template")']


def test_a_text_prompt_needs_a_template(api, key):
    fields = fields_of(api.post(PROMPTS, key=key, json={"name": "s", "version": "1.0.0", "type": "text"}))
    assert fields == ['"template" is required']
    fields = fields_of(
        api.post(PROMPTS, key=key, json={"name": "s", "version": "1.0.0", "type": "text", "template": ""})
    )
    assert fields == ['"template" is not allowed to be empty']


def test_an_explicit_chat_type_needs_messages(api, key):
    fields = fields_of(api.post(PROMPTS, key=key, json={"name": "s", "version": "1.0.0", "type": "chat"}))
    assert fields == ['"messages" is required']


# --- GET /v1/prompts (list) ---


def test_the_list_holds_one_item_per_name_ordered_by_name(api, key):
    # Lower-case names only: how case orders depends on the database's collation.
    for name, version in [("zeta", "1.0.0"), ("alpha", "1.0.0"), ("mid", "1.0.0"), ("alpha", "2.0.0")]:
        create(api, key, doc(name, version))
    body = api.get(PROMPTS, key=key).json()
    assert body == {
        "items": [{"name": "alpha"}, {"name": "mid"}, {"name": "zeta"}],
        "total": 3,
        "page": 1,
        "limit": 50,
        "totalPages": 1,
    }


def test_an_empty_list(api, key):
    assert api.get(PROMPTS, key=key).json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "limit": 50,
        "totalPages": 0,
    }


def test_the_list_is_paginated(api, key):
    for i in range(5):
        create(api, key, doc(f"p{i}"))
    page2 = api.get(f"{PROMPTS}?page=2&limit=2", key=key).json()
    assert page2 == {
        "items": [{"name": "p2"}, {"name": "p3"}],
        "total": 5,
        "page": 2,
        "limit": 2,
        "totalPages": 3,
    }
    page3 = api.get(f"{PROMPTS}?page=3&limit=2", key=key).json()
    assert page3["items"] == [{"name": "p4"}]
    beyond = api.get(f"{PROMPTS}?page=9&limit=2", key=key).json()
    assert beyond["items"] == []
    assert beyond["total"] == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", '"page" must be greater than or equal to 1'),
        ("page=-1", '"page" must be greater than or equal to 1'),
        ("page=x", '"page" must be a number'),
        ("page=1.5", '"page" must be a number'),
        ("limit=0", '"limit" must be greater than or equal to 1'),
        ("limit=101", '"limit" must be less than or equal to 100'),
        ("limit=ten", '"limit" must be a number'),
    ],
)
def test_bad_pagination_is_a_422(api, key, query, message):
    assert message in fields_of(api.get(f"{PROMPTS}?{query}", key=key))
    assert message in fields_of(api.get(f"{PROMPTS}/search?{query}", key=key))


def test_limit_100_is_accepted(api, key):
    assert api.get(f"{PROMPTS}?limit=100", key=key).json()["limit"] == 100


@pytest.mark.parametrize("path", [PROMPTS, f"{PROMPTS}/search"])
def test_q_is_a_case_insensitive_substring_search(api, key, path):
    for name in ["Welcome-Email", "welcome_sms", "farewell", "WELCOME"]:
        create(api, key, doc(name))
    body = api.get(f"{path}?q=welcome", key=key).json()
    assert sorted(i["name"] for i in body["items"]) == ["WELCOME", "Welcome-Email", "welcome_sms"]
    assert body["total"] == 3
    assert api.get(f"{path}?q=EWEL", key=key).json()["items"] == [{"name": "farewell"}]
    assert api.get(f"{path}?q=nothing", key=key).json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "limit": 50,
        "totalPages": 0,
    }
    pages = [api.get(f"{path}?q=welcome&limit=1&page={n}", key=key).json() for n in (1, 2, 3)]
    assert [p["totalPages"] for p in pages] == [3, 3, 3]
    assert [p["items"][0] for p in pages] == body["items"]


def test_q_treats_sql_wildcards_literally(api, key):
    create(api, key, doc("a_b"))
    create(api, key, doc("axb"))
    assert api.get(f"{PROMPTS}?q=a_b", key=key).json()["items"] == [{"name": "a_b"}]
    assert api.get(f"{PROMPTS}?q=%25", key=key).json()["items"] == []


def test_the_search_endpoint_without_q_lists_everything(api, key):
    create(api, key, doc("b"))
    create(api, key, doc("a"))
    assert api.get(f"{PROMPTS}/search", key=key).json()["items"] == [{"name": "a"}, {"name": "b"}]


@pytest.mark.parametrize("path", [PROMPTS, f"{PROMPTS}/search"])
def test_q_longer_than_256_characters_is_a_400(api, key, path):
    response = api.get(f"{path}?q={'a' * 257}", key=key)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["error"] == "Search query exceeds maximum length of 256 characters"
    assert api.get(f"{path}?q={'a' * 256}", key=key).status_code == 200


# --- GET /v1/prompts/{name} ---


def test_get_returns_the_content_and_the_version_record(api, key):
    record = create(api, key, doc(model_config={"model": "gpt-4o", "temperature": 0.7}))
    response = api.get(f"{PROMPTS}/welcome", key=key)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"content", "version"}
    assert body["content"] == doc(model_config={"model": "gpt-4o", "temperature": 0.7})
    assert body["version"] == record


def test_latest_is_the_highest_semver_not_the_newest_or_the_greatest_string(api, key):
    create(api, key, doc("p", "1.10.0"))
    create(api, key, doc("p", "1.9.0"))
    assert latest_version(api, key, "p") == "1.10.0"
    create(api, key, doc("p", "2.0.0-rc.1"))
    assert latest_version(api, key, "p") == "1.10.0"
    create(api, key, doc("p", "1.10.1+build.1"))
    assert latest_version(api, key, "p") == "1.10.1+build.1"
    create(api, key, doc("p", "2.0.0"))
    assert latest_version(api, key, "p") == "2.0.0"


def test_latest_among_pre_releases_only_is_the_highest_pre_release(api, key):
    for version in ["1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-alpha", "0.9.0-rc.1"]:
        create(api, key, doc("p", version))
    assert latest_version(api, key, "p") == "1.0.0-beta.11"


def test_get_an_exact_version(api, key):
    create(api, key, doc("p", "1.0.0", messages=[{"role": "user", "content": "one"}]))
    create(api, key, doc("p", "1.1.0", messages=[{"role": "user", "content": "two"}]))
    body = api.get(f"{PROMPTS}/p?version=1.0.0", key=key).json()
    assert body["version"]["version_tag"] == "1.0.0"
    assert body["content"]["messages"] == [{"role": "user", "content": "one"}]
    assert api.get(f"{PROMPTS}/p", key=key).json()["content"]["messages"][0]["content"] == "two"


def test_an_unknown_version_is_a_404(api, key):
    create(api, key, doc("p", "1.0.0"))
    for version in ["9.9.9", "1.0", "1.0.0-rc.1", "1.0.0+b"]:
        response = api.get(f"{PROMPTS}/p?{urlencode({'version': version})}", key=key)
        assert response.status_code == 404, (version, response.content)
        body = response.json()
        assert body["code"] == "NOT_FOUND"
        assert body["error"] == "Prompt not found"


def test_an_unknown_prompt_is_a_404(api, key):
    response = api.get(f"{PROMPTS}/nope", key=key)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NOT_FOUND"
    assert body["error"] == "Prompt not found"
    assert body["detailsType"] == "context"
    assert "requestId" in body


def test_an_unknown_prompt_is_a_404_for_every_selector(api, key):
    for query in ["version=1.0.0", "label=production", "render=false"]:
        response = api.get(f"{PROMPTS}/nope?{query}", key=key)
        assert response.status_code == 404, query
        assert response.json()["error"] == "Prompt not found"


def test_a_label_selects_its_version(api, key):
    create(api, key, doc("p", "1.0.0"))
    create(api, key, doc("p", "2.0.0"))
    assert (
        api.post(
            f"{PROMPTS}/p/labels", key=key, json={"name": "production", "version_tag": "1.0.0"}
        ).status_code
        == 201
    )
    assert latest_version(api, key, "p", label="production") == "1.0.0"
    assert latest_version(api, key, "p") == "2.0.0"


def test_an_unknown_label_is_a_404(api, key):
    create(api, key, doc("p", "1.0.0"))
    response = api.get(f"{PROMPTS}/p?label=production", key=key)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NOT_FOUND"
    assert body["error"] == "Label not found"


def test_version_and_label_together_are_a_422(api, key):
    create(api, key, doc("p", "1.0.0"))
    api.post(f"{PROMPTS}/p/labels", key=key, json={"name": "production"})
    fields = fields_of(api.get(f"{PROMPTS}/p?version=1.0.0&label=production", key=key))
    assert fields == ["give either version or label, not both"]


def test_the_request_body_of_a_get_is_ignored(api, key):
    create(api, key, doc("p", "1.0.0"))
    response = api.get(f"{PROMPTS}/p", key=key, data="not json")
    assert response.status_code == 200


# --- GET /v1/prompts/{name}/versions ---


def test_the_versions_list_holds_the_index_rows(api, key):
    record = create(api, key, doc("p", "1.0.0"))
    body = api.get(f"{PROMPTS}/p/versions", key=key).json()
    assert body["total"] == 1
    assert body["page"] == 1
    assert body["limit"] == 50
    assert body["totalPages"] == 1
    (item,) = body["items"]
    row = PromptVersion.objects.get()
    assert item == {
        "id": row.pk,
        "name": "p",
        "version_tag": "1.0.0",
        "commit_sha": record["commit_sha"],
        "tag": "prompts/p/1.0.0",
        "sha256": record["sha256"],
        "fs_path": None,
        "driver": "git",
        "created_at": record["created_at"],
        "author": "writer",
        "workspace_id": "default",
        "status": "active",
        "active_version_id": None,
    }


def _set_created(version: str, when) -> None:
    PromptVersion.objects.filter(version=version).update(created_at=when)


def test_versions_are_listed_newest_second_first(api, key):
    for version in ["1.0.0", "1.1.0", "0.9.0"]:
        create(api, key, doc("p", version))
    base = timezone.now().replace(microsecond=0)
    _set_created("1.0.0", base - timedelta(hours=2))
    _set_created("1.1.0", base - timedelta(hours=1))
    _set_created("0.9.0", base)
    items = api.get(f"{PROMPTS}/p/versions", key=key).json()["items"]
    assert [i["version_tag"] for i in items] == ["0.9.0", "1.1.0", "1.0.0"]


def test_versions_created_in_the_same_second_are_listed_in_creation_order(api, key):
    # Upstream's e2e test: 1.0.0 then 1.1.0 created in one second list as 1.0.0, 1.1.0.
    create(api, key, doc("p", "1.0.0"))
    create(api, key, doc("p", "1.1.0"))
    create(api, key, doc("p", "1.2.0"))
    base = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    _set_created("1.0.0", base + timedelta(microseconds=100))
    _set_created("1.1.0", base + timedelta(microseconds=900_000))
    _set_created("1.2.0", base + timedelta(microseconds=500_000))
    items = api.get(f"{PROMPTS}/p/versions", key=key).json()["items"]
    assert [i["version_tag"] for i in items] == ["1.0.0", "1.1.0", "1.2.0"]


def test_the_versions_list_is_paginated(api, key):
    for i in range(3):
        create(api, key, doc("p", f"1.{i}.0"))
    body = api.get(f"{PROMPTS}/p/versions?limit=2&page=2", key=key).json()
    assert body["total"] == 3
    assert body["totalPages"] == 2
    assert len(body["items"]) == 1
    assert "limit" in fields_of(api.get(f"{PROMPTS}/p/versions?limit=500", key=key))[0]


def test_the_versions_of_an_unknown_prompt_are_an_empty_list(api, key):
    response = api.get(f"{PROMPTS}/nope/versions", key=key)
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "page": 1, "limit": 50, "totalPages": 0}


def test_the_versions_list_shows_only_the_named_prompt(api, key):
    create(api, key, doc("p", "1.0.0"))
    create(api, key, doc("q", "2.0.0"))
    items = api.get(f"{PROMPTS}/p/versions", key=key).json()["items"]
    assert [(i["name"], i["version_tag"]) for i in items] == [("p", "1.0.0")]


# --- scopes and authentication ---


def test_a_read_only_key_cannot_create(api, make_key):
    _, reader = make_key("read")
    response = api.post(PROMPTS, key=reader, json=doc())
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "FORBIDDEN"
    assert not PromptVersion.objects.exists()
    assert not (settings.GIT_ROOT / "default.git").exists()


def test_a_read_only_key_can_read(api, key, make_key):
    create(api, key, doc("p"))
    _, reader = make_key("read")
    assert api.get(PROMPTS, key=reader).status_code == 200
    assert api.get(f"{PROMPTS}/p", key=reader).status_code == 200
    assert api.get(f"{PROMPTS}/p/versions", key=reader).status_code == 200
    assert api.get(f"{PROMPTS}/search?q=p", key=reader).status_code == 200


def test_a_write_only_key_cannot_read(api, key, make_key):
    create(api, key, doc("p"))
    _, writer = make_key("write")
    assert api.post(PROMPTS, key=writer, json=doc("q")).status_code == 201
    assert api.get(f"{PROMPTS}/p", key=writer).status_code == 403


@pytest.mark.parametrize("path", [PROMPTS, f"{PROMPTS}/search", f"{PROMPTS}/p", f"{PROMPTS}/p/versions"])
def test_an_ingest_key_cannot_read_prompts(api, key, make_key, path):
    create(api, key, doc("p"))
    _, ingest = make_key("ingest")
    response = api.get(path, key=ingest)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "FORBIDDEN"


def test_an_ingest_key_cannot_create_prompts(api, make_key):
    _, ingest = make_key("ingest")
    assert api.post(PROMPTS, key=ingest, json=doc()).status_code == 403
    assert not PromptVersion.objects.exists()


@pytest.mark.parametrize("path", [PROMPTS, f"{PROMPTS}/p", f"{PROMPTS}/p/versions", f"{PROMPTS}/search"])
def test_no_key_is_a_401(api, key, path):
    create(api, key, doc("p"))
    response = api.get(path)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "UNAUTHORIZED"
    assert "p" not in json.dumps(body.get("details") or {})


def test_no_key_cannot_create(api):
    response = api.post(PROMPTS, json=doc())
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert not PromptVersion.objects.exists()


def test_an_unknown_key_is_a_401(api):
    response = api.get(PROMPTS, key="pm_" + "0" * 64)
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid API key"


def test_an_admin_only_key_cannot_create(api, make_key):
    # No scope hierarchy (upstream §5): admin alone does not imply write.
    _, admin_only = make_key("admin")
    assert api.post(PROMPTS, key=admin_only, json=doc()).status_code == 403


def test_unicode_and_control_characters_round_trip(api, key):
    text = "Grüße 👋 — \u0000 \t\r\n \\u0041 {{name}}"
    create(api, key, doc(messages=[{"role": "user", "content": text}], note="\u0000"))
    content = api.get(f"{PROMPTS}/welcome", key=key).json()["content"]
    assert content["messages"][0]["content"] == text
    assert content["note"] == "\u0000"
    stored = get_store().get(workspace_id="default", name="welcome", version="1.0.0")
    assert json.loads(stored.content)["messages"][0]["content"] == text
    assert "Grüße 👋".encode() in stored.content  # stored as UTF-8, not \u-escaped
