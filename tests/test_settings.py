"""config.settings refuses malformed environment values at start-up, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VALID = {"SECRET_KEY": "s" * 40, "API_KEY_SALT": "a-salt-of-sixteen-chars"}


def setup_django(tmp_path: Path, *, then: str = "", **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``django.setup()``, then the code ``then``, in a clean process; ``None`` unsets a variable."""
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith(("RATE_LIMIT", "API_KEY", "SECRET_KEY", "DEBUG", "DRIVER", "MAX_BODY", "S3_"))
    }
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DATA_DIR": str(tmp_path / "data"), **VALID})
    for name, value in env.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + then],
        cwd=REPO,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_a_valid_configuration_starts(tmp_path):
    result = setup_django(tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_valid_postgres_and_redis_configuration_starts(tmp_path):
    result = setup_django(
        tmp_path, DATABASE_URL="postgres://u:p@db.example:5432/pm", REDIS_URL="redis://cache.example:6379/0"
    )
    assert result.returncode == 0, result.stderr


def test_a_short_salt_is_refused(tmp_path):
    refused(setup_django(tmp_path, API_KEY_SALT="too-short"), "API_KEY_SALT", "16")


def test_a_missing_salt_is_refused_outside_debug(tmp_path):
    refused(setup_django(tmp_path, API_KEY_SALT=None), "API_KEY_SALT")


def test_an_empty_salt_counts_as_missing(tmp_path):
    refused(setup_django(tmp_path, API_KEY_SALT="  "), "API_KEY_SALT")


def test_a_missing_salt_is_tolerated_in_debug(tmp_path):
    result = setup_django(tmp_path, API_KEY_SALT=None, SECRET_KEY=None, DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_a_missing_secret_key_is_refused_outside_debug(tmp_path):
    refused(setup_django(tmp_path, SECRET_KEY=None), "SECRET_KEY")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_MAX_REQUESTS", "abc"),
        ("RATE_LIMIT_MAX_REQUESTS", "-1"),
        ("RATE_LIMIT_MAX_REQUESTS", "100001"),
        ("RATE_LIMIT_WINDOW_MS", "0"),
        ("MAX_BODY_BYTES", "10MB"),
        ("MAX_BODY_BYTES", "100"),
        ("API_KEY_LAST_USED_DEBOUNCE_MS", "soon"),
        ("DEBUG", "maybe"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable(tmp_path, name, value):
    refused(setup_django(tmp_path, **{name: value}), name, value)


def test_a_malformed_pool_setting_is_refused_with_postgres(tmp_path):
    result = setup_django(tmp_path, DATABASE_URL="postgres://u@db.example/pm", DATABASE_POOL="sometimes")
    refused(result, "DATABASE_POOL", "sometimes")


def test_an_unknown_driver_is_refused(tmp_path):
    refused(setup_django(tmp_path, DRIVER="ftp"), "DRIVER", "ftp")


def test_a_driver_not_available_yet_is_refused_at_start(tmp_path):
    refused(setup_django(tmp_path, DRIVER="github"), "DRIVER=github is not available")


def test_the_s3_driver_starts_with_a_bucket(tmp_path):
    result = setup_django(tmp_path, DRIVER="s3", S3_BUCKET="prompts-bucket")
    assert result.returncode == 0, result.stderr


def test_the_s3_driver_starts_with_an_endpoint_and_both_keys(tmp_path):
    result = setup_django(
        tmp_path,
        DRIVER="s3",
        S3_BUCKET="prompts-bucket",
        S3_ENDPOINT="http://minio:9000",
        S3_ACCESS_KEY="minio",
        S3_SECRET_KEY="minio-secret",
    )
    assert result.returncode == 0, result.stderr


def test_the_s3_driver_needs_a_bucket(tmp_path):
    refused(setup_django(tmp_path, DRIVER="s3"), "S3_BUCKET")


@pytest.mark.parametrize("given", ["S3_ACCESS_KEY", "S3_SECRET_KEY"])
def test_one_s3_key_without_the_other_is_refused(tmp_path, given):
    refused(setup_django(tmp_path, DRIVER="s3", S3_BUCKET="prompts-bucket", **{given: "x"}), "S3_ACCESS_KEY")


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "prompts/"), ("team/docs", "team/docs/"), ("a/", "a/")]
)
def test_the_s3_prefix_ends_with_one_slash(tmp_path, value, expected):
    env = {"DRIVER": "s3", "S3_BUCKET": "prompts-bucket", "S3_PREFIX": value}
    result = setup_django(tmp_path, **env, then="from django.conf import settings; print(settings.S3_PREFIX)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("driver", ["git", "filesystem", "GIT"])
def test_the_git_driver_and_its_alias_start(tmp_path, driver):
    assert setup_django(tmp_path, DRIVER=driver).returncode == 0


def test_the_server_refuses_generated_secrets_with_a_shared_database(tmp_path):
    """Nodes sharing DATABASE_URL must share the salt: it is never generated per data directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "API_KEY_SALT", "DJANGO_SETTINGS_MODULE"}
    }
    env.update({"DATABASE_URL": "postgres://u@db.invalid:5432/pm", "DATA_DIR": str(tmp_path / "data")})
    server = Path(sys.executable).with_name("promptmetrics-server")
    result = subprocess.run([str(server)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "set SECRET_KEY and API_KEY_SALT in the environment" in result.stderr
    assert not (tmp_path / "data" / "secrets.json").exists()


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:///tmp/db", "postgres://host", "postgres://h:port/db"])
def test_an_unsupported_database_url_is_refused(tmp_path, url):
    refused(setup_django(tmp_path, DATABASE_URL=url), "DATABASE_URL")


@pytest.mark.parametrize(("name", "value"), [("PORT", "abc"), ("PORT", "70000"), ("WEB_CONCURRENCY", "0")])
def test_the_server_refuses_a_malformed_setting_in_one_line(tmp_path, name, value):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update({name: value, "DATA_DIR": str(tmp_path / "data")})
    server = Path(sys.executable).with_name("promptmetrics-server")
    result = subprocess.run([str(server)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"promptmetrics-server: {name} ")
    assert value in result.stderr
    assert "Traceback" not in result.stderr
