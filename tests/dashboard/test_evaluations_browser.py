"""The evaluations pages in a real browser: they load cleanly, the score trend is drawn with its
threshold, filters work, and editors (only) create suites through the form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evaluations import services
from evaluations.models import Evaluation
from tenancy.context import Actor
from tenancy.models import Workspace
from tests.evaluations.support import clock

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = Actor(api_key_name="pytest")


def _seed() -> Evaluation:
    Workspace.objects.get_or_create(id="acme", defaults={"name": "acme"})
    evaluation = services.evaluation_create(
        workspace_id="acme",
        body={
            "name": "faithfulness",
            "prompt_name": "support-reply",
            "version_tag": "1.1.0",
            "threshold": 0.7,
            "criteria": {"rules": [{"type": "contains"}]},
        },
        actor=ACTOR,
    )
    services.evaluation_create(
        workspace_id="acme", body={"name": "tone", "prompt_name": "welcome"}, actor=ACTOR
    )
    now = timezone.now()
    for day in range(12):
        version = "1.0.0" if day > 5 else "1.1.0"
        scores = [0.45 + ((day * 7 + i * 13) % 40) / 100 for i in range(6)]
        with clock(now - timedelta(days=day, hours=1)):
            services.results_add(
                evaluation=evaluation,
                body=[
                    {"score": s, "version_tag": version, "trace_id": f"trace{day}x{i}"}
                    for i, s in enumerate(scores)
                ],
                actor=ACTOR,
            )
    data = services.dataset_create(
        workspace_id="acme",
        body={
            "name": "capitals",
            "description": "European capitals",
            "rows": [
                {"input": {"question": f"What is the capital of {c}?"}, "expectedOutput": a}
                for c, a in (("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"))
            ],
        },
        actor=ACTOR,
    )
    services.eval_run_create(
        evaluation=evaluation,
        body={"dataset_id": data.pk, "outputs": ["Paris", "Milan", "Madrid"], "version_tag": "1.1.0"},
        actor=ACTOR,
    )
    return evaluation


def test_evaluation_pages_load_and_draw(tab_as) -> None:
    evaluation = _seed()
    tab = tab_as("viewer", "acme")

    tab.goto("/evaluations")
    page = tab.page
    assert page.locator("tr[data-evaluation]").count() == 2
    assert page.locator("#create-evaluation").count() == 0  # viewers get no create form
    tab.screenshot("evaluations-list")
    page.fill("#id_prompt", "welcome")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("tr[data-evaluation]").count() == 1
    assert page.locator("tr[data-evaluation] a").inner_text() == "tone"

    tab.goto(f"/evaluations/{evaluation.pk}")
    page.wait_for_selector("#score-trend svg.main-svg")
    names = page.evaluate("document.getElementById('score-trend').data.map(t => t.name)")
    assert names == ["Max", "Min–max", "Average", "Threshold 0.7"]
    # Four traces drawn, the last (the threshold) dashed.
    assert page.locator("#score-trend .scatterlayer .trace").count() == 4
    dash = page.locator("#score-trend .scatterlayer .trace").nth(3).locator("path.js-line")
    assert "px" in (dash.get_attribute("style") or "") and "stroke-dasharray" in dash.get_attribute("style")
    assert page.locator("table.versions tbody tr").count() == 2
    assert page.locator("tr[data-run]").count() == 1
    tab.screenshot("evaluations-evaluation")
    page.click("nav.tabs >> text=7d")
    page.wait_for_selector("#score-trend svg.main-svg")
    assert "window=7d" in page.url

    tab.goto("/datasets")
    tab.screenshot("evaluations-datasets")
    page.click("tr[data-dataset] a")
    page.wait_for_load_state("networkidle")
    assert page.locator("tr[data-row]").count() == 3
    assert "Madrid" in page.locator("table.dataset-rows").inner_text()
    tab.screenshot("evaluations-dataset")


def test_editor_creates_an_evaluation_and_sees_errors(tab_as) -> None:
    tab = tab_as("editor", "acme")
    tab.allow(r"/evaluations$")  # the 422 of the bad submission
    tab.goto("/evaluations")
    page = tab.page

    page.click("details.create-evaluation summary")
    page.fill("#ev-name", "exactness")
    page.fill("#ev-prompt", "support-reply")
    page.fill("#ev-threshold", "high")
    page.click("#create-evaluation button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert '"threshold" must be a number' in page.locator("#create-errors").inner_text()
    assert page.input_value("#ev-name") == "exactness"  # kept for the correction
    assert not Evaluation.objects.exists()
    tab.screenshot("evaluations-create-error")

    page.fill("#ev-threshold", "0.9")
    page.select_option("#ev-pass-rule", "gt")
    page.click("#create-evaluation button[type=submit]")
    page.wait_for_load_state("networkidle")
    evaluation = Evaluation.objects.get(name="exactness")
    assert page.url.endswith(f"/evaluations/{evaluation.pk}")
    assert "Evaluation exactness created." in page.locator(".messages").inner_text()
    assert evaluation.threshold == 0.9 and evaluation.pass_rule == "gt"
