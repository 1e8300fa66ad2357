"""Management commands: import_prompts, export_prompts, move_label, reconcile_prompts."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from registry.documents import content_sha256, serialize
from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion, VersionStatus
from registry.services import label_set, prompt_version_create
from registry.storage import get_store
from tenancy.models import AuditLog
from tests.conftest import TEST_ACTOR


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str, match: str | None = None) -> tuple[str, str]:
    """Run a command expected to end in CommandError; return what it printed before that."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=match):
        call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def document(name: str, version: str, text: str = "Hello {{who}}") -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        "variables": {"who": {"type": "string", "required": True}},
        "model_config": {"model": "gpt-4o-mini", "temperature": 0.2},
        "tags": ["greeting"],
        "x-owner": "team-a",  # unknown keys are preserved
    }


def create(name: str, version: str, *, workspace: str = "default", **kwargs: Any) -> PromptVersion:
    return prompt_version_create(
        workspace_id=workspace, body=document(name, version, **kwargs), actor=TEST_ACTOR
    )


YAML_PROMPT = """\
# a text prompt, in YAML
type: text
name: summary
version: 2.0.0
template: |
  Summarize {{topic}} in {{words}} words.
variables:
  topic: {type: string, required: true}
  words: {type: number}
tags: [docs]
"""


@pytest.fixture
def prompt_dir(tmp_path: Path) -> Path:
    """Two JSON and two YAML prompt files (one nested), an invalid one, and files to ignore."""
    root = tmp_path / "prompts"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "greeting-1.0.0.json").write_text(json.dumps(document("greeting", "1.0.0")))
    (root / "nested" / "greeting-1.1.0.json").write_text(json.dumps(document("greeting", "1.1.0"), indent=4))
    (root / "nested" / "deeper" / "summary.yaml").write_text(YAML_PROMPT)
    (root / "nested" / "farewell.yml").write_text(
        "name: farewell\nversion: 0.1.0\nmessages:\n  - role: user\n    content: Bye\n"
    )
    (root / "nested" / "broken.json").write_text('{"name": "broken", "version": "1.0.0", "messages": [')
    (root / "README.md").write_text("not a prompt")
    (root / "notes.txt").write_text("{}")
    return root


# --- import_prompts ---


def test_import_creates_a_version_per_file_and_reports_the_invalid_one(prompt_dir, db):
    out, _ = run_failing("import_prompts", str(prompt_dir), match="1 of 5")
    lines = out.strip().splitlines()
    assert lines == [
        "[1/5] greeting-1.0.0.json: created greeting@1.0.0",
        "[2/5] nested/broken.json: invalid: unparseable (Expecting value: line 1 column 53 (char 52))",
        "[3/5] nested/deeper/summary.yaml: created summary@2.0.0",
        "[4/5] nested/farewell.yml: created farewell@0.1.0",
        "[5/5] nested/greeting-1.1.0.json: created greeting@1.1.0",
        "created 4, skipped 0, invalid 1",
    ]
    assert set(PromptVersion.objects.active().values_list("prompt__name", "version")) == {
        ("greeting", "1.0.0"),
        ("greeting", "1.1.0"),
        ("summary", "2.0.0"),
        ("farewell", "0.1.0"),
    }
    assert not Prompt.objects.filter(name="broken").exists()
    summary = PromptVersion.objects.get(prompt__name="summary")
    assert summary.document["template"] == "Summarize {{topic}} in {{words}} words.\n"
    assert summary.document["variables"]["words"] == {"type": "number", "required": False}
    assert summary.author == "manage.py"
    assert AuditLog.objects.filter(action="create_prompt", api_key_name="manage.py").count() == 4


def test_import_stores_what_the_api_would_store(prompt_dir, db):
    run_failing("import_prompts", str(prompt_dir))
    row = PromptVersion.objects.get(prompt__name="greeting", version="1.1.0")
    expected = serialize(document("greeting", "1.1.0"))
    assert row.sha256 == content_sha256(expected)
    stored = get_store().get(workspace_id="default", name="greeting", version="1.1.0")
    assert stored is not None and stored.content == expected


def test_import_is_idempotent(prompt_dir, db):
    run_failing("import_prompts", str(prompt_dir))
    rows = PromptVersion.objects.count()
    out, _ = run_failing("import_prompts", str(prompt_dir))
    assert PromptVersion.objects.count() == rows
    assert out.strip().splitlines()[-1] == "created 0, skipped 4, invalid 1"
    assert "[1/5] greeting-1.0.0.json: skipped (exists) greeting@1.0.0" in out
    assert "differs" not in out


def test_import_without_invalid_files_succeeds_and_twice_skips_all(tmp_path, db):
    for version in ("1.0.0", "1.0.1", "1.1.0-rc.1"):
        (tmp_path / f"{version}.json").write_text(json.dumps(document("greeting", version)))
    first, _ = run("import_prompts", str(tmp_path))
    assert first.strip().splitlines()[-1] == "created 3, skipped 0, invalid 0"
    second, _ = run("import_prompts", str(tmp_path))
    assert second.strip().splitlines()[-1] == "created 0, skipped 3, invalid 0"
    assert second.count("skipped (exists)") == 3


def test_import_notes_an_existing_version_with_other_content(tmp_path, db):
    create("greeting", "1.0.0")
    (tmp_path / "g.json").write_text(json.dumps(document("greeting", "1.0.0", text="Changed")))
    out, _ = run("import_prompts", str(tmp_path))
    assert "[1/1] g.json: skipped (exists) greeting@1.0.0 — the stored version differs" in out
    assert PromptVersion.objects.get().document["messages"][1]["content"] == "Hello {{who}}"


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        (
            "v.json",
            json.dumps({"name": "x", "version": "1"}),
            'invalid: version must be semantic (e.g., 1.0.0 or 1.1.0-rc.1); "messages" is required',
        ),
        (
            "v.yaml",
            "name: x\nversion: 1.0.0\nmessages: [{role: robot, content: hi}]\n",
            'invalid: "messages[0].role" must be one of [system, user, assistant]',
        ),
        (
            "v.yaml",
            "name: x\nversion: 1.0\nmessages: [{role: user, content: hi}]\n",
            "invalid: version must be semantic",
        ),
        ("v.yaml", "", 'invalid: "value" must be of type object'),
        ("v.yaml", "- a\n- b\n", 'invalid: "value" must be of type object'),
        ("v.yaml", "name: [unclosed\n", "invalid: unparseable"),
        ("v.yaml", "a: 1\n---\nb: 2\n", "invalid: unparseable"),
        ("v.yaml", "name: x\nversion: 1.0.0\nreleased: 2024-01-01\n", "invalid: not representable as JSON"),
        ("v.json", '{"name": "x", "version": "1.0.0", "temperature": NaN}', "invalid: unparseable"),
        ("v.json", b"\xff\xfe{}", "invalid: not UTF-8 text"),
    ],
)
def test_import_reports_invalid_files(tmp_path, filename, content, message, db):
    path = tmp_path / filename
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out, _ = run_failing("import_prompts", str(tmp_path), match="1 of 1")
    assert out.splitlines()[0].startswith(f"[1/1] {filename}: {message}")
    assert out.strip().splitlines()[-1] == "created 0, skipped 0, invalid 1"
    assert not PromptVersion.objects.exists()


def test_import_accepts_a_utf8_bom(tmp_path, db):
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(document("bom", "1.0.0")).encode())
    out, _ = run("import_prompts", str(tmp_path))
    assert "created bom@1.0.0" in out


def test_import_into_another_workspace(prompt_dir, workspace):
    workspace("acme")
    run_failing("import_prompts", str(prompt_dir), "--workspace", "acme")
    assert set(PromptVersion.objects.values_list("workspace_id", flat=True)) == {"acme"}


def test_import_refuses_an_unknown_workspace_or_directory(tmp_path, db):
    run_failing("import_prompts", str(tmp_path), "--workspace", "ghost", match="ghost")
    run_failing("import_prompts", str(tmp_path / "missing"), match="not a directory")


def test_import_of_an_empty_directory(tmp_path, db):
    out, _ = run("import_prompts", str(tmp_path))
    assert out.strip() == "created 0, skipped 0, invalid 0"


# --- export_prompts ---


def test_export_writes_the_stored_bytes(tmp_path, workspace):
    workspace("acme")
    create("greeting", "1.0.0")
    create("greeting", "1.1.0", text="Hi {{who}} — ünïcode ✓")
    create("other", "0.1.0", workspace="acme")
    target = tmp_path / "export"
    out, _ = run("export_prompts", str(target))
    assert out.strip().splitlines() == [
        "[1/2] default/greeting/1.0.0.json: written",
        "[2/2] default/greeting/1.1.0.json: written",
        "exported 2, unchanged 0, refused 0",
    ]
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        "default/greeting/1.0.0.json",
        "default/greeting/1.1.0.json",
    ]
    for version in ("1.0.0", "1.1.0"):
        stored = get_store().get(workspace_id="default", name="greeting", version=version)
        written = (target / "default" / "greeting" / f"{version}.json").read_bytes()
        assert written == stored.content
        assert content_sha256(written) == PromptVersion.objects.get(version=version).sha256
    assert (target / "default/greeting/1.0.0.json").read_bytes() == serialize(document("greeting", "1.0.0"))


def test_export_skips_pending_versions(tmp_path, db):
    create("greeting", "1.0.0")
    PromptVersion.objects.create(
        workspace_id="default",
        prompt=Prompt.objects.get(name="greeting"),
        version="2.0.0",
        document=document("greeting", "2.0.0"),
        sha256="0" * 64,
        driver="git",
        status=VersionStatus.PENDING,
    )
    out, _ = run("export_prompts", str(tmp_path))
    assert out.strip().splitlines()[-1] == "exported 1, unchanged 0, refused 0"
    assert not (tmp_path / "default/greeting/2.0.0.json").exists()


def test_export_of_all_workspaces(tmp_path, workspace):
    workspace("acme")
    create("greeting", "1.0.0")
    create("other", "0.1.0", workspace="acme")
    out, _ = run("export_prompts", str(tmp_path), "--all-workspaces")
    assert "exported 2," in out
    assert (tmp_path / "acme/other/0.1.0.json").is_file()
    assert (tmp_path / "default/greeting/1.0.0.json").is_file()
    acme, _ = run("export_prompts", str(tmp_path / "only-acme"), "--workspace", "acme")
    assert "exported 1," in acme
    assert not (tmp_path / "only-acme/default").exists()


def test_export_is_idempotent_and_refuses_to_overwrite_a_differing_file(tmp_path, db):
    create("greeting", "1.0.0")
    create("greeting", "1.1.0")
    run("export_prompts", str(tmp_path))
    again, _ = run("export_prompts", str(tmp_path))
    assert again.strip().splitlines()[-1] == "exported 0, unchanged 2, refused 0"

    edited = tmp_path / "default/greeting/1.0.0.json"
    edited.write_text("{}\n")
    out, _ = run_failing("export_prompts", str(tmp_path), match="--force")
    assert "[1/2] default/greeting/1.0.0.json: refused: an existing file differs (use --force)" in out
    assert out.strip().splitlines()[-1] == "exported 0, unchanged 1, refused 1"
    assert edited.read_text() == "{}\n"

    forced, _ = run("export_prompts", str(tmp_path), "--force")
    assert "[1/2] default/greeting/1.0.0.json: overwritten" in forced
    assert forced.strip().splitlines()[-1] == "exported 1, unchanged 1, refused 0"
    assert edited.read_bytes() == serialize(document("greeting", "1.0.0"))
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_export_refuses_bad_options(tmp_path, db):
    run_failing("export_prompts", str(tmp_path), "--workspace", "ghost", match="ghost")
    run_failing(
        "export_prompts", str(tmp_path), "--workspace", "default", "--all-workspaces", match="not both"
    )
    (tmp_path / "file").write_text("x")
    run_failing("export_prompts", str(tmp_path / "file"), match="not a directory")


def test_export_then_import_into_another_workspace_reproduces_the_documents(tmp_path, workspace):
    workspace("copy")
    create("greeting", "1.0.0")
    create("greeting", "1.1.0-rc.1", text="Ünïcode {{who}}")
    prompt_version_create(
        workspace_id="default",
        body={
            "type": "text",
            "name": "summary",
            "version": "2.0.0",
            "template": "Sum {{x}}",
            "z": [1, {"b": 2, "a": 1}],
        },
        actor=TEST_ACTOR,
    )
    run("export_prompts", str(tmp_path))
    out, _ = run("import_prompts", str(tmp_path / "default"), "--workspace", "copy")
    assert out.strip().splitlines()[-1] == "created 3, skipped 0, invalid 0"

    def snapshot(workspace_id: str) -> dict[tuple[str, str], tuple[str, Any]]:
        rows = PromptVersion.objects.active().filter(workspace_id=workspace_id).select_related("prompt")
        return {(r.prompt.name, r.version): (r.sha256, r.document) for r in rows}

    assert snapshot("copy") == snapshot("default")
    assert len(snapshot("copy")) == 3
    for (name, version), _ in snapshot("default").items():
        original = get_store().get(workspace_id="default", name=name, version=version)
        copied = get_store().get(workspace_id="copy", name=name, version=version)
        assert copied.content == original.content

    again, _ = run("export_prompts", str(tmp_path), "--workspace", "copy")
    for path in (tmp_path / "copy").rglob("*.json"):
        assert path.read_bytes() == (tmp_path / "default" / path.relative_to(tmp_path / "copy")).read_bytes()


# --- move_label ---


@pytest.fixture
def greeting(db) -> dict[str, PromptVersion]:
    versions = {v: create("greeting", v) for v in ("1.0.0", "1.1.0")}
    label_set(
        workspace_id="default", prompt_name="greeting", label="production", version="1.0.0", actor=TEST_ACTOR
    )
    return versions


def test_move_label_moves_audits_and_records_history(
    greeting, api, make_key, django_capture_on_commit_callbacks
):
    _, plaintext = make_key("read")
    assert (
        api.get("/v1/prompts/greeting?label=production&render=false", key=plaintext).json()["version"][
            "version_tag"
        ]
        == "1.0.0"
    )
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("move_label", "greeting", "production", "1.1.0")
    assert out.strip() == "Moved label 'production' of 'greeting' in 'default': 1.0.0 -> 1.1.0."
    assert (
        api.get("/v1/prompts/greeting?label=production&render=false", key=plaintext).json()["version"][
            "version_tag"
        ]
        == "1.1.0"
    )
    event = PromptLabelEvent.objects.order_by("-id").first()
    assert (event.from_version_id, event.to_version_id, event.actor) == (
        greeting["1.0.0"].pk,
        greeting["1.1.0"].pk,
        "manage.py",
    )
    audit = AuditLog.objects.get(action="label:create", api_key_name="manage.py")
    assert (audit.target_id, audit.prompt_name, audit.version_tag) == ("production", "greeting", "1.1.0")


def test_move_label_creates_a_new_label_and_reports_no_op_moves(greeting):
    out, _ = run("move_label", "greeting", "staging", "1.1.0")
    assert out.strip() == "Created label 'staging' of 'greeting' in 'default' at 1.1.0."
    assert PromptLabel.objects.get(name="staging").version_id == greeting["1.1.0"].pk
    same, _ = run("move_label", "greeting", "staging", "1.1.0")
    assert "already points at 1.1.0" in same


def test_move_label_in_another_workspace(greeting, workspace):
    workspace("acme")
    create("greeting", "3.0.0", workspace="acme")
    run("move_label", "greeting", "production", "3.0.0", "--workspace", "acme")
    assert PromptLabel.objects.get(workspace_id="acme").version.version == "3.0.0"
    assert PromptLabel.objects.get(workspace_id="default").version_id == greeting["1.0.0"].pk


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["ghost", "production", "1.0.0"], "Prompt 'ghost' does not exist in workspace 'default'"),
        (["greeting", "production", "9.9.9"], "no active version '9.9.9'"),
        (["greeting", "production", "not-semver"], "version_tag must be semantic"),
        (["greeting", "bad label!", "1.0.0"], "name must contain only"),
        (["greeting", "production", "1.0.0", "--workspace", "ghost"], "Workspace 'ghost' does not exist"),
    ],
)
def test_move_label_errors(greeting, workspace, args, match):
    run_failing("move_label", *args, match=match)
    assert PromptLabel.objects.get().version_id == greeting["1.0.0"].pk
    assert not AuditLog.objects.filter(api_key_name="manage.py").exists()


def test_move_label_refuses_a_version_of_the_same_name_in_another_workspace(greeting, workspace):
    workspace("acme")
    create("greeting", "3.0.0", workspace="acme")
    run_failing("move_label", "greeting", "production", "3.0.0", match="no active version '3.0.0'")


def test_move_label_refuses_a_pending_version(greeting):
    PromptVersion.objects.create(
        workspace_id="default",
        prompt=Prompt.objects.get(name="greeting"),
        version="2.0.0",
        document=document("greeting", "2.0.0"),
        sha256="0" * 64,
        driver="git",
        status=VersionStatus.PENDING,
    )
    run_failing("move_label", "greeting", "production", "2.0.0", match="no active version '2.0.0'")


# --- reconcile_prompts ---


def pending(name: str, version: str, *, age_s: float = 120, in_store: bool) -> PromptVersion:
    """A pending row as a crash between the two phases leaves it, with or without stored content."""
    doc = document(name, version)
    content = serialize(doc)
    if in_store:
        get_store().put(workspace_id="default", name=name, version=version, content=content, author="x")
    prompt, _ = Prompt.objects.get_or_create(workspace_id="default", name=name)
    return PromptVersion.objects.create(
        workspace_id="default",
        prompt=prompt,
        version=version,
        document=doc,
        sha256=content_sha256(content),
        driver="git",
        status=VersionStatus.PENDING,
        created_at=timezone.now() - timedelta(seconds=age_s),
    )


def test_reconcile_promotes_and_removes(db):
    promoted = pending("greeting", "1.0.0", in_store=True)
    removed = pending("greeting", "1.1.0", in_store=False)
    young = pending("greeting", "1.2.0", age_s=0, in_store=False)
    out, _ = run("reconcile_prompts")
    assert out.strip().splitlines() == [
        "promoted default/greeting@1.0.0",
        "removed default/greeting@1.1.0",
        "promoted 1, adopted 0, removed 1, failed 0",
    ]
    row = PromptVersion.objects.get(pk=promoted.pk)
    assert row.status == VersionStatus.ACTIVE
    assert len(row.commit_sha) == 40
    assert not PromptVersion.objects.filter(pk=removed.pk).exists()
    assert PromptVersion.objects.get(pk=young.pk).status == VersionStatus.PENDING

    again, _ = run("reconcile_prompts")
    assert again.strip() == "promoted 0, adopted 0, removed 0, failed 0"


def test_reconcile_grace_option(db):
    young = pending("greeting", "1.2.0", age_s=5, in_store=False)
    out, _ = run("reconcile_prompts", "--grace", "60")
    assert out.strip() == "promoted 0, adopted 0, removed 0, failed 0"
    out, _ = run("reconcile_prompts", "--grace", "0")
    assert out.strip().splitlines() == [
        "removed default/greeting@1.2.0",
        "promoted 0, adopted 0, removed 1, failed 0",
    ]
    assert not PromptVersion.objects.filter(pk=young.pk).exists()


def test_reconcile_adopts_what_the_store_holds(db):
    row = pending("greeting", "1.0.0", in_store=False)
    stored = serialize(document("greeting", "1.0.0", text="What the store has"))
    get_store().put(workspace_id="default", name="greeting", version="1.0.0", content=stored, author="x")
    out, _ = run("reconcile_prompts")
    assert out.strip().splitlines() == [
        "adopted default/greeting@1.0.0",
        "promoted 0, adopted 1, removed 0, failed 0",
    ]
    assert PromptVersion.objects.get(pk=row.pk).sha256 == content_sha256(stored)


def test_reconcile_reports_failures_and_exits_non_zero(db, monkeypatch):
    from registry.storage import StoreError

    pending("greeting", "1.0.0", in_store=False)
    store = get_store()

    def unavailable(**kwargs: Any) -> None:
        raise StoreError("disk on fire")

    monkeypatch.setattr(store, "get", unavailable)
    out, _ = run_failing("reconcile_prompts", match="stay pending")
    assert out.strip().splitlines() == [
        "failed default/greeting@1.0.0",
        "promoted 0, adopted 0, removed 0, failed 1",
    ]
    assert PromptVersion.objects.get().status == VersionStatus.PENDING


@pytest.mark.parametrize("grace", ["-1", "nan"])
def test_reconcile_refuses_a_negative_grace(db, grace):
    run_failing("reconcile_prompts", "--grace", grace, match="--grace")
