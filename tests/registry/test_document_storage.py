"""The index row reproduces the stored bytes exactly, on every database (jsonb would reorder keys)."""

from __future__ import annotations

import json

import pytest

from registry.models import PromptVersion
from registry.storage import get_store

pytestmark = pytest.mark.django_db

# Key orders a jsonb column would change (it sorts keys by length, then bytewise).
DOC = {
    "version": "1.0.0",
    "name": "ordering",
    "zeta_custom": {"b": 1, "a": [3, 2, 1], "long_key_first": True, "k": None},
    "messages": [{"content": "Hi {{who}} — ünïcode", "role": "user"}],
    "variables": {"who": {"type": "string"}},
}


def test_the_document_keeps_its_key_order_and_bytes(api, make_key):
    _, key = make_key("read,write")
    assert api.post("/v1/prompts", key=key, json=DOC).status_code == 201

    row = PromptVersion.objects.get()
    stored = get_store().get(workspace_id="default", name="ordering", version="1.0.0")
    assert stored is not None
    assert list(row.document) == list(DOC)
    assert list(row.document["zeta_custom"]) == ["b", "a", "long_key_first", "k"]
    assert (json.dumps(row.document, indent=2, ensure_ascii=False) + "\n").encode() == stored.content
    got = api.get("/v1/prompts/ordering?render=false", key=key)
    assert list(got.json()["content"]) == list(DOC)
    assert list(json.loads(got.content)["content"]["messages"][0]) == ["content", "role"]
