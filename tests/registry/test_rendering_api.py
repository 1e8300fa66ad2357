"""Rendering prompts: ``GET /v1/prompts/{name}?variables[x]=..`` and ``POST /v1/prompts/{name}/render``.

Upstream §2.2 step 4 and §3.4: Mustache without HTML escaping, assistant messages never rendered,
required variables enforced (400) unless ``render=false``. The POST endpoint is ours: typed
variables, declared defaults, label/version selection.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest

PROMPTS = "/v1/prompts"


@pytest.fixture
def key(make_key):
    return make_key("read,write", name="writer")[1]


def create(api, key, name="greet", version="1.0.0", messages=None, **extra):
    body = {
        "name": name,
        "version": version,
        "messages": messages
        or [
            {"role": "system", "content": "You greet {{name}}."},
            {"role": "user", "content": "Hello {{name}}!"},
        ],
        **extra,
    }
    response = api.post(PROMPTS, key=key, json=body)
    assert response.status_code == 201, response.content
    return response.json()


def get(api, key, name="greet", **params):
    return api.get(f"{PROMPTS}/{name}?{urlencode(params)}", key=key)


def contents(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [m["content"] for m in response.json()["content"]["messages"]]


def render(api, key, name="greet", **body):
    return api.post(f"{PROMPTS}/{name}/render", key=key, json=body)


def fields_of(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["detailsType"] == "fields"
    return body["details"]["fields"]


# --- GET with variables[...] ---


def test_query_variables_are_substituted(api, key):
    create(api, key)
    response = get(api, key, **{"variables[name]": "Alice"})
    assert contents(response) == ["You greet Alice.", "Hello Alice!"]
    # The version record is that of the stored version, whatever was rendered.
    assert response.json()["version"]["version_tag"] == "1.0.0"


def test_several_query_variables(api, key):
    create(api, key, messages=[{"role": "user", "content": "{{greeting}}, {{name}} from {{city}}"}])
    response = get(
        api, key, **{"variables[greeting]": "Hi", "variables[name]": "Bo", "variables[city]": "Oslo"}
    )
    assert contents(response) == ["Hi, Bo from Oslo"]


def test_rendering_does_not_escape_html(api, key):
    create(api, key, messages=[{"role": "user", "content": "{{name}} | {{{name}}} | {{&name}}"}])
    value = "<b>&\"'</b>"
    response = get(api, key, **{"variables[name]": value})
    assert contents(response) == [f"{value} | {value} | {value}"]


def test_query_values_are_strings_and_stay_verbatim(api, key):
    create(api, key, messages=[{"role": "user", "content": "[{{n}}] [{{s}}] [{{u}}]"}])
    response = get(
        api, key, **{"variables[n]": "007", "variables[s]": "  spaced  ", "variables[u]": "żółw 🐢"}
    )
    assert contents(response) == ["[007] [  spaced  ] [żółw 🐢]"]


def test_a_query_variable_with_a_mustache_tag_in_its_value_is_not_rendered_again(api, key):
    create(api, key)
    assert contents(get(api, key, **{"variables[name]": "{{name}}"})) == [
        "You greet {{name}}.",
        "Hello {{name}}!",
    ]


def test_assistant_messages_are_never_rendered(api, key):
    messages = [
        {"role": "system", "content": "Answer {{name}}."},
        {"role": "user", "content": "Example for {{name}}"},
        {"role": "assistant", "content": "Literal {{name}} and {{#x}}section{{/x}}"},
        {"role": "user", "content": "Now {{name}}"},
    ]
    create(api, key, messages=messages)
    response = get(api, key, **{"variables[name]": "Alice"})
    assert contents(response) == [
        "Answer Alice.",
        "Example for Alice",
        "Literal {{name}} and {{#x}}section{{/x}}",
        "Now Alice",
    ]


def test_other_message_keys_survive_rendering(api, key):
    create(api, key, messages=[{"role": "user", "content": "Hi {{name}}", "name": "u1", "extra": {"k": 1}}])
    message = get(api, key, **{"variables[name]": "A"}).json()["content"]["messages"][0]
    assert message == {"role": "user", "content": "Hi A", "name": "u1", "extra": {"k": 1}}


def test_missing_optional_variables_render_empty(api, key):
    create(api, key, messages=[{"role": "user", "content": "[{{name}}][{{other}}]"}])
    assert contents(get(api, key, **{"variables[name]": "A"})) == ["[A][]"]


def test_without_variables_the_templates_come_back_raw(api, key):
    create(api, key, variables={"name": {"type": "string"}})
    assert contents(get(api, key)) == ["You greet {{name}}.", "Hello {{name}}!"]


def test_render_false_returns_the_raw_templates(api, key):
    create(api, key)
    assert contents(get(api, key, render="false", **{"variables[name]": "Alice"})) == [
        "You greet {{name}}.",
        "Hello {{name}}!",
    ]


@pytest.mark.parametrize("value", ["true", "1", "0", "False", "no", ""])
def test_any_render_value_but_false_renders(api, key, value):
    create(api, key)
    assert contents(get(api, key, render=value, **{"variables[name]": "Al"}))[1] == "Hello Al!"


def test_get_does_not_apply_declared_defaults(api, key):
    # Upstream: defaults are documentation on GET; only the render endpoint applies them.
    create(
        api,
        key,
        messages=[{"role": "user", "content": "{{name}}/{{tone}}"}],
        variables={"tone": {"type": "string", "default": "warm"}, "name": {"type": "string"}},
    )
    assert contents(get(api, key, **{"variables[name]": "A"})) == ["A/"]


def test_get_does_not_check_variable_types(api, key):
    create(api, key, messages=[{"role": "user", "content": "n={{n}}"}], variables={"n": {"type": "number"}})
    assert contents(get(api, key, **{"variables[n]": "not-a-number"})) == ["n=not-a-number"]


def test_rendering_does_not_change_what_is_served_next(api, key):
    create(api, key)
    assert contents(get(api, key, **{"variables[name]": "Alice"}))[1] == "Hello Alice!"
    assert contents(get(api, key))[1] == "Hello {{name}}!"
    assert contents(get(api, key, **{"variables[name]": "Bob"}))[1] == "Hello Bob!"


def test_a_version_is_rendered(api, key):
    create(api, key, version="1.0.0", messages=[{"role": "user", "content": "v1 {{name}}"}])
    create(api, key, version="2.0.0", messages=[{"role": "user", "content": "v2 {{name}}"}])
    assert contents(get(api, key, version="1.0.0", **{"variables[name]": "A"})) == ["v1 A"]
    assert contents(get(api, key, **{"variables[name]": "A"})) == ["v2 A"]


# --- required variables on GET ---


def _with_required(api, key):
    create(
        api,
        key,
        messages=[{"role": "user", "content": "{{a}} {{b}} {{c}}"}],
        variables={
            "a": {"type": "string", "required": True},
            "c": {"type": "string"},
            "b": {"type": "string", "required": True},
        },
    )


def _missing(response, message):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["error"] == message
    assert "details" not in body


def test_missing_required_variables_are_a_400_naming_them(api, key):
    _with_required(api, key)
    _missing(get(api, key, **{"variables[c]": "x"}), "Missing required variables: a, b")
    _missing(get(api, key, **{"variables[b]": "x"}), "Missing required variables: a")


def test_missing_required_variables_are_a_400_even_with_no_variables_passed(api, key):
    _with_required(api, key)
    _missing(get(api, key), "Missing required variables: a, b")


def test_an_empty_value_counts_as_present(api, key):
    _with_required(api, key)
    assert contents(get(api, key, **{"variables[a]": "", "variables[b]": "B"})) == [" B "]


def test_render_false_skips_the_required_check(api, key):
    _with_required(api, key)
    assert contents(get(api, key, render="false")) == ["{{a}} {{b}} {{c}}"]


def test_all_required_variables_present_renders(api, key):
    _with_required(api, key)
    assert contents(get(api, key, **{"variables[a]": "A", "variables[b]": "B"})) == ["A B "]


def test_the_required_check_applies_to_the_selected_version(api, key):
    create(api, key, version="1.0.0", messages=[{"role": "user", "content": "{{a}}"}])
    create(
        api,
        key,
        version="2.0.0",
        messages=[{"role": "user", "content": "{{a}}"}],
        variables={"a": {"type": "string", "required": True}},
    )
    _missing(get(api, key), "Missing required variables: a")
    assert contents(get(api, key, version="1.0.0")) == ["{{a}}"]


# --- text prompts on GET ---


def test_a_text_prompt_renders_its_template(api, key):
    body = {"name": "t", "version": "1.0.0", "type": "text", "template": "Say {{w}} to <{{who}}>"}
    assert api.post(PROMPTS, key=key, json=body).status_code == 201
    response = get(api, key, "t", **{"variables[w]": "hi", "variables[who]": "A&B"})
    assert response.json()["content"]["template"] == "Say hi to <A&B>"
    assert get(api, key, "t", render="false", **{"variables[w]": "x"}).json()["content"]["template"] == (
        "Say {{w}} to <{{who}}>"
    )


# --- POST /v1/prompts/{name}/render ---


TYPED = {
    "name": {"type": "string", "required": True},
    "count": {"type": "number"},
    "ratio": {"type": "number"},
    "vip": {"type": "boolean"},
    "items": {"type": "array"},
    "user": {"type": "object"},
}


def _typed_prompt(api, key, **extra):
    messages = [
        {"role": "system", "content": "For {{user.name}} ({{user.address.city}}){{#vip}} VIP{{/vip}}"},
        {
            "role": "user",
            "content": "{{name}} has {{count}} ({{ratio}}):"
            "{{#items}} [{{.}}]{{/items}}{{^items}} none{{/items}}",
        },
        {"role": "assistant", "content": "{{name}} stays"},
    ]
    return create(
        api,
        key,
        "typed",
        messages=messages,
        variables=TYPED,
        model_config={"model": "gpt-4o", "temperature": 0.2},
        **extra,
    )


def test_render_endpoint_renders_typed_variables(api, key):
    record = _typed_prompt(api, key)
    variables = {
        "name": "Alice",
        "count": 3,
        "ratio": 2.0,
        "vip": True,
        "items": ["a", "b"],
        "user": {"name": "Ann", "address": {"city": "Oslo"}},
    }
    response = render(api, key, "typed", variables=variables)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["messages"] == [
        {"role": "system", "content": "For Ann (Oslo) VIP"},
        {"role": "user", "content": "Alice has 3 (2): [a] [b]"},
        {"role": "assistant", "content": "{{name}} stays"},
    ]
    assert body["name"] == "typed"
    assert body["version_tag"] == "1.0.0"
    assert body["commit_sha"] == record["commit_sha"]
    assert body["sha256"] == record["sha256"]
    assert body["tag"] == "prompts/typed/1.0.0"
    assert body["type"] == "chat"
    assert body["model_config"] == {"model": "gpt-4o", "temperature": 0.2}
    assert body["variables"] == variables
    assert "text" not in body


def test_render_endpoint_inverted_sections_and_false_booleans(api, key):
    _typed_prompt(api, key)
    response = render(api, key, "typed", variables={"name": "Bo", "vip": False, "items": [], "count": 0})
    assert response.status_code == 200, response.content
    assert [m["content"] for m in response.json()["messages"]] == [
        "For  ()",
        "Bo has 0 (): none",
        "{{name}} stays",
    ]


def test_render_endpoint_sections_over_objects(api, key):
    create(
        api,
        key,
        "list",
        messages=[{"role": "user", "content": "{{#people}}{{name}}={{age}};{{/people}}"}],
        variables={"people": {"type": "array"}},
    )
    people = [{"name": "a", "age": 1}, {"name": "b", "age": 2.5}]
    response = render(api, key, "list", variables={"people": people})
    assert response.json()["messages"][0]["content"] == "a=1;b=2.5;"


def test_render_endpoint_does_not_escape_html(api, key):
    create(api, key)
    response = render(api, key, variables={"name": "<b>&\"'"})
    assert [m["content"] for m in response.json()["messages"]] == ["You greet <b>&\"'.", "Hello <b>&\"'!"]


@pytest.mark.parametrize(
    ("variables", "bad"),
    [
        ({"name": 5}, ['"name" must be of type string']),
        ({"name": "A", "count": "3"}, ['"count" must be of type number']),
        ({"name": "A", "count": True}, ['"count" must be of type number']),
        ({"name": "A", "vip": "yes"}, ['"vip" must be of type boolean']),
        ({"name": "A", "items": "a,b"}, ['"items" must be of type array']),
        ({"name": "A", "user": ["Ann"]}, ['"user" must be of type object']),
        (
            {"name": None, "count": "x", "vip": 1, "items": {}, "user": "u"},
            [
                '"name" must be of type string',
                '"count" must be of type number',
                '"vip" must be of type boolean',
                '"items" must be of type array',
                '"user" must be of type object',
            ],
        ),
    ],
)
def test_render_endpoint_type_mismatch_is_a_422_naming_the_variables(api, key, variables, bad):
    _typed_prompt(api, key)
    assert fields_of(render(api, key, "typed", variables=variables)) == bad


def test_render_endpoint_accepts_undeclared_variables_of_any_type(api, key):
    create(api, key, messages=[{"role": "user", "content": "{{x}} {{name}}"}])
    response = render(api, key, variables={"x": [1, 2], "name": {"a": 1}})
    assert response.status_code == 200, response.content


def test_render_endpoint_applies_declared_defaults(api, key):
    create(
        api,
        key,
        "defaults",
        messages=[{"role": "user", "content": "{{greeting}} {{name}} x{{times}}"}],
        variables={
            "greeting": {"type": "string", "default": "Hello"},
            "name": {"type": "string", "required": True, "default": "friend"},
            "times": {"type": "number", "default": 2},
        },
    )
    response = render(api, key, "defaults")
    assert response.status_code == 200, response.content
    assert response.json()["messages"][0]["content"] == "Hello friend x2"
    assert response.json()["variables"] == {"greeting": "Hello", "name": "friend", "times": 2}
    response = render(api, key, "defaults", variables={"name": "Al", "times": 5})
    assert response.json()["messages"][0]["content"] == "Hello Al x5"


def test_render_endpoint_missing_required_variables_are_a_400(api, key):
    _with_required(api, key)
    _missing(render(api, key, variables={"c": "x"}), "Missing required variables: a, b")
    _missing(render(api, key), "Missing required variables: a, b")


def test_render_endpoint_selects_a_version_or_a_label(api, key):
    create(api, key, version="1.0.0", messages=[{"role": "user", "content": "one {{name}}"}])
    create(api, key, version="2.0.0", messages=[{"role": "user", "content": "two {{name}}"}])
    create(api, key, version="3.0.0-rc.1", messages=[{"role": "user", "content": "rc {{name}}"}])
    assert (
        api.post(
            f"{PROMPTS}/greet/labels", key=key, json={"name": "prod", "version_tag": "1.0.0"}
        ).status_code
        == 201
    )

    latest = render(api, key, variables={"name": "A"}).json()
    assert (latest["version_tag"], latest["messages"][0]["content"]) == ("2.0.0", "two A")
    by_version = render(api, key, version="3.0.0-rc.1", variables={"name": "A"}).json()
    assert (by_version["version_tag"], by_version["messages"][0]["content"]) == ("3.0.0-rc.1", "rc A")
    by_label = render(api, key, label="prod", variables={"name": "A"}).json()
    assert (by_label["version_tag"], by_label["messages"][0]["content"]) == ("1.0.0", "one A")


def test_render_endpoint_version_and_label_together_are_a_422(api, key):
    create(api, key)
    api.post(f"{PROMPTS}/greet/labels", key=key, json={"name": "prod"})
    fields = fields_of(render(api, key, version="1.0.0", label="prod", variables={"name": "A"}))
    assert fields == ["give either version or label, not both"]


def test_render_endpoint_unknowns_are_404s(api, key):
    create(api, key)
    response = render(api, key, "nope", variables={})
    assert response.status_code == 404
    assert response.json()["error"] == "Prompt not found"
    response = render(api, key, version="9.9.9", variables={"name": "A"})
    assert response.status_code == 404
    assert response.json()["error"] == "Prompt not found"
    response = render(api, key, label="missing", variables={"name": "A"})
    assert response.status_code == 404
    assert response.json()["error"] == "Label not found"


@pytest.mark.parametrize("variables", [["a"], "name=A", 3])
def test_render_endpoint_variables_must_be_an_object(api, key, variables):
    create(api, key)
    fields = fields_of(render(api, key, variables=variables))
    assert len(fields) == 1
    assert fields[0].startswith('"variables"'), fields


def test_render_endpoint_rejects_a_non_object_body(api, key):
    create(api, key)
    response = api.post(f"{PROMPTS}/greet/render", key=key, data="[1]")
    assert response.status_code == 422, response.content
    response = api.post(f"{PROMPTS}/greet/render", key=key, data="{bad")
    assert response.status_code == 400, response.content


def test_render_endpoint_renders_a_text_prompt(api, key):
    body = {
        "name": "t",
        "version": "1.0.0",
        "type": "text",
        "template": "Translate {{#words}}{{.}} {{/words}}to {{lang}}",
        "variables": {"words": {"type": "array"}, "lang": {"type": "string", "default": "French"}},
    }
    assert api.post(PROMPTS, key=key, json=body).status_code == 201
    response = render(api, key, "t", variables={"words": ["cat", "dog"]})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["type"] == "text"
    assert data["text"] == "Translate cat dog to French"
    assert "messages" not in data
    assert data["model_config"] is None


def test_render_endpoint_leaves_the_stored_document_alone(api, key):
    create(api, key)
    assert render(api, key, variables={"name": "Z"}).status_code == 200
    assert contents(get(api, key)) == ["You greet {{name}}.", "Hello {{name}}!"]


def test_render_endpoint_is_a_read(api, key, make_key):
    create(api, key)
    _, reader = make_key("read")
    assert render(api, reader, variables={"name": "A"}).status_code == 200
    _, ingest = make_key("ingest")
    assert render(api, ingest, variables={"name": "A"}).status_code == 403
    assert render(api, None, variables={"name": "A"}).status_code == 401


def test_a_name_with_reserved_url_characters_is_unknown_not_an_error(api, key):
    create(api, key)
    response = api.post(f"{PROMPTS}/{quote('gr eet')}/render", key=key, json={})
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_a_dotted_query_variable_is_a_flat_name_not_a_path(api, key):
    # Query values are flat strings: "variables[user.name]" names a key "user.name", which Mustache's
    # dotted lookup ({{user.name}} = user -> name) never finds (as with upstream's mustache.js).
    # Nested values go through the render endpoint.
    create(api, key, "dotted", messages=[{"role": "user", "content": "[{{user.name}}]"}])
    assert contents(get(api, key, "dotted", **{"variables[user.name]": "Ann"})) == ["[]"]
    response = render(api, key, "dotted", variables={"user": {"name": "Ann"}})
    assert response.json()["messages"][0]["content"] == "[Ann]"


@pytest.mark.parametrize("template", ["a {{#open}}b{{/close}}", "{{= | =}}"])
def test_a_stored_template_that_does_not_parse_is_a_422_not_a_500(api, key, template):
    # Versions are stored as sent (as upstream does); the error surfaces when one is rendered.
    create(api, key, name="broken", messages=[{"role": "user", "content": template}])
    (message,) = fields_of(render(api, key, name="broken", variables={"open": True}))
    assert message.startswith("The template does not parse: ")
    assert fields_of(get(api, key, name="broken", **{"variables[open]": "1"})) == [message]
    assert get(api, key, name="broken", render="false").status_code == 200
