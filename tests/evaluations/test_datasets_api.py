"""``/v1/datasets`` (upstream §2.13): create (up to 10,000 rows, 400 above), 422s, list, get with a
five-row preview, delete, 404s, and the all-or-nothing insert."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from config import bulk
from evaluations.models import Dataset, DatasetRow
from tenancy.models import AuditLog
from tests.evaluations.support import DATASETS, assert_404, create_dataset, fields, ok

LIST_FIELDS = {"id", "name", "description", "row_count", "schema", "workspace_id", "created_at"}


def rows(n: int) -> list[dict]:
    return [{"input": {"question": f"q{i}"}, "expectedOutput": {"answer": f"a{i}"}} for i in range(n)]


# --- Create ---


def test_create_returns_upstreams_shape(api, key):
    body = create_dataset(api, key, rows(3), description="capital cities")
    assert set(body) == {"id", "name", "row_count", "created_at"}
    assert (body["name"], body["row_count"]) == ("capitals", 3)
    assert isinstance(body["id"], int)
    assert isinstance(body["created_at"], int)
    dataset = Dataset.objects.get()
    assert (dataset.pk, dataset.description, dataset.workspace_id) == (
        body["id"],
        "capital cities",
        "default",
    )
    stored = list(dataset.rows.order_by("position").values("position", "input", "expected_output", "output"))
    assert stored == [
        {
            "position": i,
            "input": {"question": f"q{i}"},
            "expected_output": {"answer": f"a{i}"},
            "output": None,
        }
        for i in range(3)
    ]
    assert AuditLog.objects.get(action="create_dataset").target_id == str(body["id"])


def test_rows_may_use_either_spelling_carry_an_output_and_extra_keys(api, key):
    body = create_dataset(
        api,
        key,
        [
            {"input": {"q": 1}, "expected_output": "snake"},
            {"input": {"q": 2}, "expectedOutput": ["camel"], "output": {"text": "Paris"}, "note": "ignored"},
            {"input": {}},
        ],
    )
    got = ok(api.get(f"{DATASETS}/{body['id']}", key=key))
    assert got["preview"][0]["expectedOutput"] == "snake"
    assert got["preview"][1]["expectedOutput"] == ["camel"]
    assert got["preview"][1]["output"] == {"text": "Paris"}
    assert "note" not in got["preview"][1]
    assert set(got["preview"][2]) == {"id", "position", "input"}


def test_an_empty_dataset(api, key):
    body = create_dataset(api, key, [])
    assert body["row_count"] == 0
    assert ok(api.get(f"{DATASETS}/{body['id']}", key=key))["preview"] == []


def test_names_need_not_be_unique(api, key):
    first = create_dataset(api, key, rows(1))
    second = create_dataset(api, key, rows(2))
    assert first["id"] != second["id"]
    assert Dataset.objects.filter(name="capitals").count() == 2


def test_ten_thousand_rows_are_accepted(api, key):
    body = create_dataset(api, key, [{"input": {"i": i}} for i in range(10_000)])
    assert body["row_count"] == 10_000
    assert DatasetRow.objects.filter(dataset_id=body["id"]).count() == 10_000
    last = DatasetRow.objects.get(dataset_id=body["id"], position=9_999)
    assert last.input == {"i": 9_999}


def test_more_than_ten_thousand_rows_is_a_400(api, key):
    response = api.post(DATASETS, key=key, json={"name": "big", "rows": [{"input": {}}] * 10_001})
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"
    assert response.json()["error"] == "A dataset holds at most 10000 rows"
    assert not Dataset.objects.exists()
    assert not DatasetRow.objects.exists()


def test_rows_over_ten_mebibytes_are_a_400(api, key):
    # 8 MB of UTF-8 on the wire (under the 10 MiB body limit), 24 MB as stored (JSON-escaped).
    body = {"name": "big", "rows": [{"input": {"text": "é" * 1_000_000}} for _ in range(4)]}
    response = api.post(DATASETS, key=key, data=json.dumps(body, ensure_ascii=False).encode())
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "Dataset rows exceed 10 MiB"
    assert not Dataset.objects.exists()


def test_a_body_over_ten_mebibytes_is_a_413(api, key):
    big = [{"input": {"text": "x" * 1_100_000}} for _ in range(10)]
    response = api.post(DATASETS, key=key, json={"name": "big", "rows": big})
    assert response.status_code == 413
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        ({"rows": []}, ['"name" is required']),
        ({"name": "", "rows": []}, ['"name" is not allowed to be empty']),
        ({"name": 5, "rows": []}, ['"name" must be a string']),
        (
            {"name": "n" * 129, "rows": []},
            ['"name" length must be less than or equal to 128 characters long'],
        ),
        ({"name": "d", "description": "x" * 1025, "rows": []}, ['"description" length must be']),
        ({"name": "d"}, ['"rows" is required']),
        ({"name": "d", "rows": {"input": {}}}, ['"rows" must be an array']),
        ({}, ['"name" is required', '"rows" is required']),
        ({"name": "d", "rows": [{"input": {}}, "row"]}, ['"rows[1]" must be of type object']),
        ({"name": "d", "rows": [{"input": {}}, {"expectedOutput": {}}]}, ['"rows[1].input" is required']),
        ({"name": "d", "rows": [{"input": "text"}]}, ['"rows[0].input" must be of type object']),
        (
            {"name": "d", "rows": [{"input": []}, {"input": {}}, {"input": None}]},
            ['"rows[0].input" must be of type object', '"rows[2].input" is required'],
        ),
    ],
)
def test_invalid_bodies_are_422_and_store_nothing(api, key, body, messages):
    got = fields(api.post(DATASETS, key=key, json=body))
    assert len(got) == len(messages), got
    assert all(g.startswith(m) for g, m in zip(got, messages, strict=True)), got
    assert not Dataset.objects.exists()
    assert not DatasetRow.objects.exists()


def test_a_body_that_is_not_an_object_is_a_422(api, key):
    assert fields(api.post(DATASETS, key=key, json=[{"name": "d", "rows": []}])) == [
        '"value" must be of type object'
    ]


def test_many_bad_rows_report_the_first_fifty(api, key):
    got = fields(api.post(DATASETS, key=key, json={"name": "d", "rows": [{"input": 1}] * 200}))
    assert len(got) == 50
    assert got[49] == '"rows[49].input" must be of type object'


def test_the_insert_is_all_or_nothing(api, key):
    """A failure on the second chunk of rows leaves no dataset and no rows behind."""
    calls = []
    real_insert = bulk.insert

    def failing_insert(model, chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_insert(model, chunk)

    with mock.patch("evaluations.services.bulk.insert", side_effect=failing_insert):
        response = api.post(DATASETS, key=key, json={"name": "d", "rows": [{"input": {}}] * 2500})
    assert response.status_code == 500
    assert calls == [1000, 1000]
    assert not Dataset.objects.exists()
    assert not DatasetRow.objects.exists()
    assert not AuditLog.objects.filter(action="create_dataset").exists()


# --- Read ---


def test_the_list_is_newest_first_without_rows(api, key):
    ids = [create_dataset(api, key, rows(i + 1), name=f"d{i}")["id"] for i in range(3)]
    body = ok(api.get(DATASETS, key=key))
    assert [d["id"] for d in body["items"]] == ids[::-1]
    assert [d["row_count"] for d in body["items"]] == [3, 2, 1]
    assert all(set(d) == LIST_FIELDS for d in body["items"])
    assert all(d["schema"] is None and d["workspace_id"] == "default" for d in body["items"])
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (3, 1, 50, 1)
    page = ok(api.get(f"{DATASETS}?page=2&limit=2", key=key))
    assert [d["id"] for d in page["items"]] == [ids[0]]
    assert page["totalPages"] == 2


def test_the_list_searches_names(api, key):
    create_dataset(api, key, rows(1), name="capitals-eu")
    create_dataset(api, key, rows(1), name="rivers")
    assert [d["name"] for d in ok(api.get(f"{DATASETS}?q=capital", key=key))["items"]] == ["capitals-eu"]


@pytest.mark.parametrize("query", ["page=0", "limit=101", "limit=x"])
def test_bad_list_queries_are_422(api, key, query):
    fields(api.get(f"{DATASETS}?{query}", key=key))


def test_get_has_a_preview_of_the_first_five_rows(api, key):
    body = create_dataset(api, key, rows(8), description="d")
    got = ok(api.get(f"{DATASETS}/{body['id']}", key=key))
    assert set(got) == LIST_FIELDS | {"preview"}
    assert (got["id"], got["name"], got["description"], got["row_count"]) == (body["id"], "capitals", "d", 8)
    assert [row["position"] for row in got["preview"]] == [0, 1, 2, 3, 4]
    assert got["preview"][3]["input"] == {"question": "q3"}
    assert got["preview"][3]["expectedOutput"] == {"answer": "a3"}
    assert all(isinstance(row["id"], int) for row in got["preview"])


# --- Delete ---


def test_delete_is_a_204_then_a_404(api, key):
    doomed = create_dataset(api, key, rows(3))
    kept = create_dataset(api, key, rows(2), name="kept")
    assert api.delete(f"{DATASETS}/{doomed['id']}", key=key).status_code == 204
    assert_404(api.get(f"{DATASETS}/{doomed['id']}", key=key), "Dataset not found")
    assert_404(api.delete(f"{DATASETS}/{doomed['id']}", key=key), "Dataset not found")
    assert not DatasetRow.objects.filter(dataset_id=doomed["id"]).exists()
    assert DatasetRow.objects.filter(dataset_id=kept["id"]).count() == 2
    assert [d["id"] for d in ok(api.get(DATASETS, key=key))["items"]] == [kept["id"]]
