"""The Django admin for telemetry: every list and detail page loads; prices and retention are editable,
telemetry rows are not (traces and runs may be deleted); lists stay cheap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from telemetry.models import (
    CostSource,
    LogRecord,
    LogRollup,
    ModelPrice,
    Run,
    Span,
    TelemetrySettings,
    Trace,
)
from telemetry.pricing import compute_cost, prices_changed
from tenancy.models import AuditLog

MODELS = ["logrecord", "trace", "span", "run", "logrollup", "modelprice", "telemetrysettings"]


@pytest.fixture(autouse=True)
def _fresh_prices():
    prices_changed()
    yield
    prices_changed()


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="ops", email="", password="pw-not-used")


@pytest.fixture
def browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def rows(workspace):
    acme = workspace("acme")
    now = timezone.now()
    trace = Trace.objects.create(workspace=acme, trace_id="t_admin", name="agent loop", span_count=2)
    spans = [
        Span.objects.create(workspace=acme, trace=trace, span_id="s_root", name="root", start_time=now),
        Span.objects.create(
            workspace=acme,
            trace=trace,
            span_id="s_llm",
            parent_id="s_root",
            name="llm",
            kind="llm",
            model="gpt-4o",
        ),
    ]
    return {
        "logrecord": LogRecord.objects.create(
            workspace=acme,
            model="gpt-4o",
            tokens_in=10,
            tokens_out=5,
            cost_usd=0.1,
            cost_source=CostSource.SUPPLIED,
            trace_id="t_admin",
            metadata={"k": "v"},
        ),
        "trace": trace,
        "span": spans[1],
        "run": Run.objects.create(workspace=acme, run_id="r_admin", workflow_name="nightly", trace=trace),
        "logrollup": LogRollup.objects.create(
            workspace=acme, hour=now.replace(minute=0, second=0, microsecond=0), request_count=1
        ),
        "modelprice": ModelPrice.objects.create(
            workspace=acme, model_pattern="house-*", input_per_mtok=1, output_per_mtok=2
        ),
        "telemetrysettings": TelemetrySettings.objects.create(workspace=acme, retention_days=30),
    }


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_and_detail_page_loads(browser, rows, model):
    for query in ("", "?workspace__id__exact=acme"):
        response = browser.get(f"/admin/telemetry/{model}/{query}")
        assert response.status_code == 200, (model, query)
    detail = browser.get(f"/admin/telemetry/{model}/{rows[model].pk}/change/")
    assert detail.status_code == 200


def test_the_telemetry_index_lists_every_model(browser, db):
    page = browser.get("/admin/telemetry/").content.decode()
    for model in MODELS:
        assert f"/admin/telemetry/{model}/" in page


@pytest.mark.parametrize("model", ["logrecord", "trace", "span", "run", "logrollup"])
def test_telemetry_rows_cannot_be_added_or_edited(browser, rows, model):
    assert browser.get(f"/admin/telemetry/{model}/add/").status_code == 403
    pk = rows[model].pk
    page = browser.get(f"/admin/telemetry/{model}/{pk}/change/").content.decode()
    assert 'name="_save"' not in page
    before = type(rows[model]).objects.filter(pk=pk).values().get()
    browser.post(f"/admin/telemetry/{model}/{pk}/change/", {"name": "renamed", "model": "x"})
    assert type(rows[model]).objects.filter(pk=pk).values().get() == before


@pytest.mark.parametrize("model", ["logrecord", "span", "logrollup"])
def test_logs_spans_and_rollups_cannot_be_deleted(browser, rows, model):
    pk = rows[model].pk
    assert browser.post(f"/admin/telemetry/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(rows[model]).objects.filter(pk=pk).exists()


def test_the_trace_page_shows_its_spans_and_a_trace_can_be_deleted(browser, rows):
    trace = rows["trace"]
    page = browser.get(f"/admin/telemetry/trace/{trace.pk}/change/").content.decode()
    assert "s_root" in page and "s_llm" in page
    confirm = browser.get(f"/admin/telemetry/trace/{trace.pk}/delete/").content.decode()
    assert "Trace t_admin and its spans" in confirm and "Spans: 2" in confirm
    response = browser.post(f"/admin/telemetry/trace/{trace.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Trace.objects.filter(pk=trace.pk).exists()
    assert not Span.objects.filter(trace_id=trace.pk).exists()
    assert Run.objects.get(pk=rows["run"].pk).trace is None
    assert AuditLog.objects.filter(target_id="t_admin", workspace_id="acme").exists()


def test_runs_are_filtered_searched_and_deleted(browser, rows, workspace):
    Run.objects.create(
        workspace=workspace("other"), run_id="r_other", workflow_name="weekly", status="failed"
    )
    page = browser.get("/admin/telemetry/run/?status__exact=failed").content.decode()
    assert "r_other" in page and "r_admin" not in page
    page = browser.get("/admin/telemetry/run/?q=nightly").content.decode()
    assert "r_admin" in page and "r_other" not in page
    page = browser.get("/admin/telemetry/run/?q=r_other").content.decode()
    assert "r_other" in page and "r_admin" not in page
    response = browser.post(
        "/admin/telemetry/run/",
        {"action": "delete_selected", "_selected_action": [rows["run"].pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Run.objects.filter(run_id="r_admin").exists()
    assert AuditLog.objects.filter(target_id="r_admin").exists()


def test_logs_are_searched_by_exact_trace_id(browser, rows):
    assert str(rows["logrecord"].pk) in browser.get("/admin/telemetry/logrecord/?q=t_admin").content.decode()
    page = browser.get("/admin/telemetry/logrecord/?q=t_adm").content.decode()
    assert "0 log records" in page


def test_the_log_list_is_cheap(browser, workspace, settings):
    """No COUNT over the whole table, no DISTINCT, one query for the page's rows with their workspace."""
    acme = workspace("acme")
    now = timezone.now()
    LogRecord.objects.bulk_create(
        LogRecord(workspace=acme, model=f"m{i}", created_at=now - timedelta(seconds=i)) for i in range(150)
    )
    for query in ("", "?workspace__id__exact=acme"):
        with CaptureQueriesContext(connection) as captured:
            response = browser.get(f"/admin/telemetry/logrecord/{query}")
        assert response.status_code == 200
        sql = [q["sql"].upper() for q in captured.captured_queries]
        log_queries = [s for s in sql if "TELEMETRY_LOGRECORD" in s]
        assert len(log_queries) == 2, log_queries  # the capped count and the page
        assert not any("DISTINCT" in s for s in log_queries)
        count = next(s for s in log_queries if "COUNT(" in s)
        assert "LIMIT" in count
        page = next(s for s in log_queries if "COUNT(" not in s)
        assert "TENANCY_WORKSPACE" in page  # list_select_related: no query per row
        assert "100 log records" not in response.content.decode()
        assert response.content.decode().count('class="field-model"') == 100
        # Newest first: by id without a workspace filter, by the (workspace, created_at) index with one.
        assert "ORDER BY" in page and ("CREATED_AT" in page.split("ORDER BY")[1]) == bool(query)


def test_adding_a_model_price_in_the_admin_prices_the_next_call(browser, workspace):
    workspace("acme")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert (
        compute_cost(workspace_id="acme", model="house-model", tokens_in=1000, tokens_out=1000, at=at) is None
    )
    response = browser.post(
        "/admin/telemetry/modelprice/add/",
        {
            "workspace": "acme",
            "model_pattern": " house-model ",
            "provider": "",
            "input_per_mtok": "1.5",
            "output_per_mtok": "3",
            "cached_input_per_mtok": "",
            "reasoning_per_mtok": "",
            "effective_from": "2025-01-01",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "recompute_costs --since 2025-01-01 --workspace acme" in response.content.decode()
    row = ModelPrice.objects.get(workspace_id="acme")
    assert (row.model_pattern, row.effective_from) == ("house-model", date(2025, 1, 1))
    # 1000 * 1.5 + 1000 * 3 = 4500 per million.
    assert compute_cost(
        workspace_id="acme", model="house-model", tokens_in=1000, tokens_out=1000, at=at
    ) == pytest.approx(0.0045)

    # Editing and deleting it take effect at once too.
    response = browser.post(
        f"/admin/telemetry/modelprice/{row.pk}/change/",
        {
            "workspace": "acme",
            "model_pattern": "house-model",
            "provider": "",
            "input_per_mtok": "2",
            "output_per_mtok": "3",
            "cached_input_per_mtok": "",
            "reasoning_per_mtok": "",
            "effective_from": "2025-01-01",
        },
    )
    assert response.status_code == 302
    assert compute_cost(
        workspace_id="acme", model="house-model", tokens_in=1000, tokens_out=1000, at=at
    ) == pytest.approx(0.005)
    assert browser.post(f"/admin/telemetry/modelprice/{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert (
        compute_cost(workspace_id="acme", model="house-model", tokens_in=1000, tokens_out=1000, at=at) is None
    )


def test_a_negative_price_is_refused(browser, workspace):
    workspace("acme")
    response = browser.post(
        "/admin/telemetry/modelprice/add/",
        {
            "workspace": "acme",
            "model_pattern": "house-model",
            "input_per_mtok": "-1",
            "output_per_mtok": "3",
            "effective_from": "2025-01-01",
        },
    )
    assert response.status_code == 200
    assert "cannot be negative" in response.content.decode()
    assert not ModelPrice.objects.exists()


def test_retention_is_set_per_workspace(browser, workspace):
    workspace("acme")
    response = browser.post(
        "/admin/telemetry/telemetrysettings/add/", {"workspace": "acme", "retention_days": "90"}
    )
    assert response.status_code == 302
    settings_row = TelemetrySettings.objects.get(workspace_id="acme")
    assert settings_row.retention_days == 90
    response = browser.post(
        f"/admin/telemetry/telemetrysettings/{settings_row.pk}/change/",
        {"workspace": "acme", "retention_days": ""},
    )
    assert response.status_code == 302
    settings_row.refresh_from_db()
    assert settings_row.retention_days is None
