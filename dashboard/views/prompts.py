"""The prompt registry's pages: the searchable list, a prompt (document, versions, labels), a diff
between two versions, a label's history, moving a label, and a render tryout.

Reads go through the registry's selectors, writes through ``registry.services.label_set``, exactly
as the ``/v1/prompts`` API does; nothing here decides what a label or a version means.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from config.api import ApiError
from dashboard.paging import numbered_page
from dashboard.views.base import DashboardView, error_messages
from registry import documents, selectors, semver, services
from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion

# The API's limit on ``q``, so that a search the dashboard accepts is one the API accepts too.
MAX_QUERY = 256
DIFF_CONTEXT = 3
VARIABLE_PREFIX = "variables["


# --- pure helpers (unit-tested) -------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    # "hunk" (an @@ header), "add", "del" or "same".
    kind: str
    old: int | None
    new: int | None
    text: str


def _range(start: int, stop: int) -> str:
    # Unified diff ranges: 1-based start and a length; an empty range names the line before it.
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def diff_lines(old: str, new: str, *, context: int = DIFF_CONTEXT) -> list[DiffLine]:
    """A unified line diff of two texts, as rows with old/new line numbers (empty when equal)."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        header = f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@"
        rows.append(DiffLine("hunk", None, None, header))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [DiffLine("same", i1 + k + 1, j1 + k + 1, a[i1 + k]) for k in range(i2 - i1)]
                continue
            rows += [DiffLine("del", i + 1, None, a[i]) for i in range(i1, i2)]
            rows += [DiffLine("add", None, j + 1, b[j]) for j in range(j1, j2)]
    return rows


def by_precedence(versions: list[str]) -> list[str]:
    """Versions newest first by SemVer precedence (the order "latest" is chosen by)."""
    return sorted(versions, key=lambda v: (semver.precedence(v), v), reverse=True)


_EXAMPLES = {
    "number": "a number such as 3 or 0.5",
    "array": 'a JSON array such as ["a", "b"]',
    "object": 'a JSON object such as {"k": 1}',
}


def parse_variable(raw: str, declared: Any) -> Any:
    """A form field's text as the declared type's value; ValueError says why it is not one."""
    kind = declared.get("type") if isinstance(declared, dict) else "string"
    if kind in (None, "string"):
        return raw
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ValueError("must be true or false")
        return raw == "true"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
        ok = False
    else:
        ok = {
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "array": isinstance(value, list),
            "object": isinstance(value, dict),
        }.get(kind, True)
    if not ok:
        raise ValueError(f"must be {_EXAMPLES.get(kind, 'valid JSON')}")
    return value


def as_input(value: Any) -> str:
    """A value (a declared default) as the text its form field shows."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# --- pages ----------------------------------------------------------------------------------------


class PromptListView(DashboardView):
    template_name = "dashboard/prompts/list.html"
    nav = "prompts"
    title = "Prompts"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "").strip()
        errors: list[str] = []
        if len(q) > MAX_QUERY:
            errors.append(f"Search is limited to {MAX_QUERY} characters.")
            queryset = Prompt.objects.none()
        else:
            queryset = self.scoped(selectors.prompts_with_versions(Prompt.objects.all(), q=q or None))
        page = numbered_page(queryset, self.request)
        context.update(
            q=q,
            errors=errors,
            page=page,
            rows=self._rows(page.rows),
            has_prompts=bool(page.rows) or bool(q) or self.scoped(Prompt).exists(),
        )
        return context

    def _rows(self, prompts: list[Prompt]) -> list[dict[str, Any]]:
        """Each prompt of the page with its latest version, version count and labels: three queries
        for the whole page, whatever its length."""
        if not prompts:
            return []
        ids = [prompt.id for prompt in prompts]
        versions: dict[int, dict[str, tuple[int, Any]]] = defaultdict(dict)
        for prompt_id, row_id, version, created in (
            self.scoped(PromptVersion)
            .active()
            .filter(prompt_id__in=ids)
            .values_list("prompt_id", "id", "version", "created_at")
        ):
            versions[prompt_id][version] = (row_id, created)
        labels: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for prompt_id, label, version in (
            self.scoped(PromptLabel)
            .filter(prompt_id__in=ids)
            .order_by("name")
            .values_list("prompt_id", "name", "version__version")
        ):
            labels[prompt_id].append((label, version))
        latest = {pid: semver.latest(list(known)) for pid, known in versions.items()}
        latest_ids = [versions[pid][v][0] for pid, v in latest.items() if v is not None]
        docs = dict(self.scoped(PromptVersion).filter(id__in=latest_ids).values_list("id", "document"))
        rows = []
        for prompt in prompts:
            known = versions.get(prompt.id, {})
            top = latest.get(prompt.id)
            doc = docs.get(known[top][0], {}) if top else {}
            rows.append(
                {
                    "name": prompt.name,
                    "latest": top,
                    "description": doc.get("description", "") if isinstance(doc, dict) else "",
                    "count": len(known),
                    "labels": labels.get(prompt.id, []),
                    "updated": max((created for _, created in known.values()), default=None),
                }
            )
        return rows


class _PromptPage(DashboardView):
    """A page about one prompt of the workspace: 404 for an unknown name or another workspace's."""

    nav = "prompts"
    tab = ""
    prompt: Prompt
    versions: list[str]

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.name = kwargs["name"]

    def load(self) -> None:
        if hasattr(self, "prompt"):
            return
        if not documents.NAME_RE.match(self.name):
            raise Http404("No such prompt")
        visible = selectors.prompts_with_versions(Prompt.objects.all())
        self.prompt = self.scoped_or_404(visible, name=self.name)
        self.versions = by_precedence(list(self.listing().values_list("version", flat=True)))

    def listing(self) -> Any:
        return selectors.versions_for_listing(self.scoped(PromptVersion), name=self.name)

    def version_row(self, version: str) -> PromptVersion | None:
        if version not in self.versions:
            return None
        return self.scoped(PromptVersion).active().filter(prompt=self.prompt, version=version).first()

    def chosen_version(self, requested: str | None) -> tuple[PromptVersion, str]:
        """The requested version's row, else the latest's with a message saying why."""
        latest = semver.latest(self.versions) or ""
        wanted = requested or latest
        error = "" if wanted in self.versions else f"Version {wanted} does not exist for this prompt."
        row = self.version_row(latest if error else wanted)
        if row is None:
            raise Http404("No such version")
        return row, error

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        self.load()
        context = super().get_context_data(**kwargs)
        context.update(
            title=self.prompt.name,
            prompt=self.prompt,
            versions=self.versions,
            latest=semver.latest(self.versions),
            tab=self.tab,
        )
        return context


class PromptDetailView(_PromptPage):
    template_name = "dashboard/prompts/detail.html"
    tab = "overview"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        row, version_error = self.chosen_version(self.request.GET.get("version"))
        labels = list(selectors.labels_for_listing(self.scoped(PromptLabel), name=self.name))
        labels_by_version: dict[str, list[str]] = defaultdict(list)
        for label in labels:
            labels_by_version[label.version.version].append(label.name)
        # Newest first: the API keeps upstream's per-second order, a person wants the latest on top.
        page = numbered_page(self.listing().defer("document").order_by("-created_at", "-id"), self.request)
        older = {v: self.versions[i + 1] for i, v in enumerate(self.versions[:-1])}
        for version in page.rows:
            version.label_names = sorted(labels_by_version.get(version.version, []))
            version.previous = older.get(version.version)
        context.update(
            current=row,
            document=row.document,
            raw=documents.serialize(row.document).decode(),
            variables=_variable_rows(row.document),
            version_error=version_error,
            labels=labels,
            version_page=page,
            move=kwargs.get("move") or {"label": "production", "version": context["latest"]},
            move_error=kwargs.get("move_error", ""),
        )
        return context


class PromptLabelMoveView(PromptDetailView):
    """POST: point a label at a version (editors); errors re-render the prompt page with a 422."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.load()
        label = request.POST.get("label", "").strip()
        version = request.POST.get("version", "").strip()
        previous = (
            self.scoped(PromptLabel)
            .filter(prompt=self.prompt, name=label)
            .values_list("version__version", flat=True)
            .first()
        )
        try:
            if not label:
                raise ApiError(422, "VALIDATION_FAILED", "Give the label a name, e.g. production.")
            if not version:
                raise ApiError(422, "VALIDATION_FAILED", "Choose the version the label should point at.")
            services.label_set(
                workspace_id=self.workspace_id,
                prompt_name=self.prompt.name,
                label=label,
                version=version,
                actor=self.actor(),
            )
        except ApiError as exc:
            context = self.get_context_data(
                move={"label": label, "version": version}, move_error=" ".join(error_messages(exc))
            )
            return self.render_to_response(context, status=422)
        if previous is None:
            messages.success(request, f"Label {label} created at {version}.")
        elif previous == version:
            messages.info(request, f"Label {label} already pointed at {version}.")
        else:
            messages.success(request, f"Label {label} moved from {previous} to {version}.")
        return HttpResponseRedirect(reverse("dashboard:prompt", args=[self.prompt.name]) + "#labels")


class PromptDiffView(_PromptPage):
    template_name = "dashboard/prompts/diff.html"
    tab = "diff"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        newest = self.versions[0]
        before = self.versions[1] if len(self.versions) > 1 else newest
        old_tag = self.request.GET.get("from") or before
        new_tag = self.request.GET.get("to") or newest
        errors = [
            f"{which}: version {tag} does not exist for this prompt."
            for which, tag in (("From", old_tag), ("To", new_tag))
            if tag not in self.versions
        ]
        rows: list[DiffLine] = []
        old, new = self.version_row(old_tag), self.version_row(new_tag)
        if old is not None and new is not None:
            rows = diff_lines(
                documents.serialize(old.document).decode(), documents.serialize(new.document).decode()
            )
        context.update(
            old_tag=old_tag,
            new_tag=new_tag,
            errors=errors,
            rows=rows,
            added=sum(row.kind == "add" for row in rows),
            removed=sum(row.kind == "del" for row in rows),
        )
        return context


class PromptLabelHistoryView(_PromptPage):
    template_name = "dashboard/prompts/history.html"
    tab = "overview"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        label = kwargs["label"]
        if not documents.LABEL_RE.match(label):
            raise Http404("No such label")
        events = selectors.label_history(self.scoped(PromptLabelEvent), name=self.name, label=label)
        page = numbered_page(events, self.request)
        current = (
            self.scoped(PromptLabel)
            .filter(prompt=self.prompt, name=label)
            .values_list("version__version", flat=True)
            .first()
        )
        if not page.rows and current is None:
            raise Http404("No such label")
        context.update(label=label, current=current, page=page, title=f"{self.name} · {label}")
        return context


class PromptRenderView(_PromptPage):
    """A read-only tryout: the chosen version rendered with the values typed into the form."""

    template_name = "dashboard/prompts/render.html"
    tab = "render"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        row, version_error = self.chosen_version(params.get("version"))
        errors = [version_error] if version_error else []
        document = row.document
        declared = document.get("variables") or {}
        fields = []
        values: dict[str, Any] = {}
        for name, definition in declared.items():
            definition = definition if isinstance(definition, dict) else {}
            key = f"{VARIABLE_PREFIX}{name}]"
            raw = params.get(key)
            if raw is None and "default" in definition:
                raw = as_input(definition["default"])
            fields.append({"name": name, "key": key, "value": raw or "", **_describe(definition)})
            if not raw:
                continue
            try:
                values[name] = parse_variable(raw, definition)
            except ValueError as exc:
                errors.append(f"{name} {exc}.")
        rendered = None
        if "render" in params and not errors:
            rendered, problems = _render(document, values)
            errors += problems
        context.update(
            current=row,
            document=document,
            fields=fields,
            errors=errors,
            rendered=rendered,
            submitted="render" in params,
        )
        return context


def _render(document: dict[str, Any], values: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    # The API's render: the same defaults, type checks, required variables and parse errors.
    try:
        return selectors.prompt_render(document, values)[0], []
    except ApiError as exc:
        return None, error_messages(exc)


def _describe(definition: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": definition.get("type", "string"),
        "required": definition.get("required") is True,
        "description": definition.get("description", ""),
        "has_default": "default" in definition,
        "default": as_input(definition["default"]) if "default" in definition else "",
    }


def _variable_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    declared = document.get("variables") or {}
    return [
        {"name": name, **_describe(definition if isinstance(definition, dict) else {})}
        for name, definition in declared.items()
    ]


urlpatterns = [
    path("prompts", PromptListView.as_view(), name="prompts"),
    path("prompts/<str:name>", PromptDetailView.as_view(), name="prompt"),
    path("prompts/<str:name>/diff", PromptDiffView.as_view(), name="prompt-diff"),
    path("prompts/<str:name>/render", PromptRenderView.as_view(), name="prompt-render"),
    path("prompts/<str:name>/labels", PromptLabelMoveView.as_view(), name="prompt-label-move"),
    path(
        "prompts/<str:name>/labels/<str:label>/history",
        PromptLabelHistoryView.as_view(),
        name="prompt-label-history",
    ),
]
