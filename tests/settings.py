"""Test settings: the production module with test-only secrets supplied through the environment."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("API_KEY_SALT", "test-salt-for-ci-0000")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="pm-test-data-"))

from config.settings import *  # noqa: E402,F403

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns about a missing root

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
