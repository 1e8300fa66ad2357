"""Management commands: create_workspace, create_api_key, revoke_api_key, list_api_keys."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenancy.keys import hash_key
from tenancy.models import ApiKey, AuditLog, Workspace

KEY_RE = re.compile(r"^pm_[0-9a-f]{64}$")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- create_workspace ---


def test_create_workspace_creates_and_audits(db):
    out, _ = run("create_workspace", "acme", "--name", "Acme Inc.")
    assert "acme" in out
    workspace = Workspace.objects.get(pk="acme")
    assert workspace.name == "Acme Inc."
    entry = AuditLog.objects.get(action="workspace:create")
    assert (entry.workspace_id, entry.target_id, entry.api_key_name) == ("acme", "acme", "manage.py")


def test_create_workspace_defaults_the_name_to_the_id(db):
    run("create_workspace", "beta")
    assert Workspace.objects.get(pk="beta").name == "beta"


def test_create_workspace_refuses_a_duplicate(db):
    with pytest.raises(CommandError):
        run("create_workspace", "default")
    assert AuditLog.objects.filter(action="workspace:create").count() == 0


@pytest.mark.parametrize("bad", ["bad id", "a/b", "*", "a" * 129])
def test_create_workspace_refuses_an_invalid_id(db, bad):
    with pytest.raises(CommandError):
        run("create_workspace", bad)
    assert not Workspace.objects.filter(pk=bad).exists()


# --- create_api_key ---


def test_create_api_key_prints_the_key_once_and_stores_only_its_hash(api):
    out, err = run("create_api_key", "--name", "ci", "--scopes", "read,admin")
    plaintext = out.strip()
    assert KEY_RE.match(plaintext)
    assert out.count(plaintext) == 1
    assert plaintext not in err
    assert "ci" in err
    key = ApiKey.objects.get(name="ci")
    assert key.key_hash == hash_key(plaintext)
    assert key.workspace_id == "default"
    assert key.scopes == "read,admin"
    assert key.expires_at is None
    for value in ApiKey.objects.filter(pk=key.pk).values().get().values():
        assert plaintext[3:] not in str(value)
    me = api.get("/v1/api-keys/me", key=plaintext)
    assert me.status_code == 200
    assert me.json()["scopes"] == "read,admin"


def test_create_api_key_is_audited(db):
    run("create_api_key", "--name", "ci")
    key = ApiKey.objects.get(name="ci")
    entry = AuditLog.objects.get(action="api_key:create", target_id=str(key.pk))
    assert entry.api_key_name == "manage.py"
    assert entry.workspace_id == "default"


def test_create_api_key_defaults_to_read_and_write(db):
    run("create_api_key", "--name", "ci")
    assert ApiKey.objects.get(name="ci").scopes == "read,write"


def test_create_api_key_for_a_workspace(api, workspace):
    workspace("acme")
    out, _ = run("create_api_key", "--name", "acme-ci", "--workspace", "acme")
    assert ApiKey.objects.get(name="acme-ci").workspace_id == "acme"
    assert api.get("/v1/api-keys/me", key=out.strip(), workspace="acme").status_code == 200
    assert api.get("/v1/api-keys/me", key=out.strip()).status_code == 401


def test_create_api_key_with_workspace_star_makes_a_master_key(api):
    out, _ = run("create_api_key", "--name", "root", "--workspace", "*", "--scopes", "read,write,admin")
    key = ApiKey.objects.get(name="root")
    assert key.workspace_id is None
    me = api.get("/v1/api-keys/me", key=out.strip(), workspace="anywhere")
    assert me.status_code == 200
    assert me.json()["workspace_id"] == "*"


def test_create_api_key_with_an_expiry(db):
    from django.utils import timezone

    run("create_api_key", "--name", "temp", "--expires-in-days", "3")
    expires = ApiKey.objects.get(name="temp").expires_at
    delta = (expires - timezone.now()).total_seconds()
    assert 3 * 86400 - 60 < delta <= 3 * 86400


def test_create_api_key_refuses_an_unknown_workspace(db):
    with pytest.raises(CommandError, match="ghost"):
        run("create_api_key", "--name", "x", "--workspace", "ghost")
    assert not ApiKey.objects.filter(name="x").exists()
    assert not Workspace.objects.filter(pk="ghost").exists()


@pytest.mark.parametrize("args", [["--scopes", "root"], ["--scopes", ""], ["--expires-in-days", "0"]])
def test_create_api_key_refuses_invalid_options(db, args):
    with pytest.raises(CommandError):
        run("create_api_key", "--name", "x", *args)
    assert not ApiKey.objects.filter(name="x").exists()


# --- revoke_api_key ---


def test_revoke_api_key_revokes_and_the_key_is_refused(api, make_key, django_capture_on_commit_callbacks):
    key, plaintext = make_key("read")
    assert api.get("/v1/api-keys/me", key=plaintext).status_code == 200  # cached from here on
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("revoke_api_key", str(key.pk))
    assert str(key.pk) in out
    key.refresh_from_db()
    assert key.revoked_at is not None
    response = api.get("/v1/api-keys/me", key=plaintext)
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid API key"
    entry = AuditLog.objects.get(action="api_key:revoke")
    assert (entry.target_id, entry.api_key_name) == (str(key.pk), "manage.py")


def test_revoking_twice_is_an_error(make_key):
    key = make_key("read")[0]
    run("revoke_api_key", str(key.pk))
    with pytest.raises(CommandError, match="already revoked"):
        run("revoke_api_key", str(key.pk))
    assert AuditLog.objects.filter(action="api_key:revoke").count() == 1


def test_revoking_an_unknown_key_is_an_error(db):
    with pytest.raises(CommandError, match="does not exist"):
        run("revoke_api_key", "987654")


# --- list_api_keys ---


def test_list_api_keys_never_prints_secrets(make_key):
    made = [make_key("read", name="alpha"), make_key("admin", workspace="acme", name="beta")]
    made.append(make_key("read,write,admin", workspace=None, name="gamma"))
    out, err = run("list_api_keys")
    for key, plaintext in made:
        assert key.name in out
        assert plaintext[3:] not in out + err
        assert key.key_hash not in out + err
        assert key.key_hash[:16] not in out + err
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["ID", "NAME"]
    assert len(lines) == 4


def test_list_api_keys_filters_by_workspace(make_key):
    make_key("read", name="alpha")
    make_key("read", workspace="acme", name="beta")
    make_key("read", workspace=None, name="gamma")
    acme, _ = run("list_api_keys", "--workspace", "acme")
    assert "beta" in acme and "alpha" not in acme and "gamma" not in acme
    masters, _ = run("list_api_keys", "--workspace", "*")
    assert "gamma" in masters and "alpha" not in masters and "beta" not in masters


def test_list_api_keys_hides_revoked_keys_unless_asked(make_key):
    key = make_key("read", name="gone")[0]
    run("revoke_api_key", str(key.pk))
    active, _ = run("list_api_keys")
    assert "gone" not in active
    everything, _ = run("list_api_keys", "--include-revoked")
    assert "gone" in everything
