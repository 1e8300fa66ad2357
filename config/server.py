"""``promptmetrics-server``: the one command that prepares and runs a PromptMetrics node.

On start it applies migrations, makes sure workspace ``default`` exists, bootstraps the operator's
first key (printed once, or taken from PROMPTMETRICS_ADMIN_KEY) and the first dashboard superuser,
collects static files when they changed, then serves with gunicorn. SIGTERM is graceful: gunicorn
stops accepting, lets in-flight requests finish (GRACEFUL_TIMEOUT) and exits; every write is
committed in its request, so nothing accepted is lost.

``promptmetrics-server manage <command> ...`` (or ``promptmetrics-manage``) runs a management
command against the same data directory and settings.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str

SECRETS_FILE = "secrets.json"
BOOTSTRAP_KEY_NAME = "bootstrap-admin"


def _out(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _data_dir() -> Path:
    return Path(env_str("DATA_DIR", "data")).expanduser().resolve()  # type: ignore[arg-type]


def load_secrets() -> None:
    """Supply SECRET_KEY and API_KEY_SALT from DATA_DIR/secrets.json when the environment lacks them.

    The file is generated (mode 0600) on first start, so a fresh install needs no configuration and
    keeps the same keys valid across restarts. Values in the environment always win.
    """
    missing = [name for name in ("SECRET_KEY", "API_KEY_SALT") if not env_str(name)]
    if not missing or env_bool("DEBUG", False):
        return  # development settings have their own insecure defaults
    if env_str("DATABASE_URL"):
        # Nodes sharing a database must share these too: a salt generated per data directory would
        # make keys minted on one node fail on the others.
        raise SystemExit(
            f"With DATABASE_URL set, set {' and '.join(missing)} in the environment as well "
            "(the same values on every node)."
        )
    data_dir = _data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRETS_FILE
    if not path.exists():
        generated = {"SECRET_KEY": secrets.token_urlsafe(50), "API_KEY_SALT": secrets.token_hex(32)}
        tmp = data_dir / f".{SECRETS_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle)
        try:
            # link() publishes the complete file atomically and fails if another process won the
            # race, so concurrent first starts agree on one set of secrets.
            os.link(tmp, path)
            _out(
                f"Generated SECRET_KEY and API_KEY_SALT in {path} (set them in the environment to override)."
            )
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    stored = json.loads(path.read_text())
    for name in missing:
        os.environ[name] = stored[name]


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    load_secrets()
    import django

    django.setup()


def bootstrap() -> None:
    """Bring the database and the first credentials into shape; safe to run on every start."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    if settings.DATABASE_URL and not settings.REDIS_URL:
        _out(
            "Note: DATABASE_URL without REDIS_URL: rate limits and API-key revocations are shared by "
            "the workers of this machine only. Set REDIS_URL before running several nodes."
        )
    call_command("migrate", interactive=False, verbosity=1)

    from tenancy.services import DEFAULT_WORKSPACE, superuser_ensure, workspace_ensure

    workspace_ensure(workspace_id=DEFAULT_WORKSPACE)
    _bootstrap_admin_key()
    username = os.environ.get("PROMPTMETRICS_ADMIN_USER", "").strip()
    password = os.environ.get("PROMPTMETRICS_ADMIN_PASSWORD", "")
    if username and password and superuser_ensure(username=username, password=password):
        _out(f"Created dashboard superuser {username!r}.")
    _reconcile_prompts(settings)
    _collect_static()
    # Connections opened here must not be inherited by the forked workers. With DATABASE_POOL,
    # close_all() only hands the connection back to psycopg's pool, which keeps it open: the workers
    # would share its socket and read each other's results. Closing the pool closes them for real.
    connections.close_all()
    for connection in connections.all(initialized_only=True):
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()


def _reconcile_prompts(settings: Any) -> None:
    """Heal prompt versions left pending by a crash between the index write and the store write."""
    from registry.services import RECONCILE_GRACE_S, prompt_reconcile
    from registry.storage import get_store

    # Alone on this machine's SQLite nothing else can be mid-write now; with a shared database other
    # nodes may be, so only rows older than the grace period are touched.
    grace = RECONCILE_GRACE_S if settings.DATABASE_URL else 0
    report = prompt_reconcile(grace_seconds=grace)
    for kind in ("promoted", "adopted", "removed", "failed"):
        for label in getattr(report, kind):
            _out(f"Reconciled prompt version {label}: {kind}.")
    # The store may hold sockets or locks: each worker opens its own after the fork.
    get_store.cache_clear()


def _bootstrap_admin_key() -> None:
    from tenancy.context import Actor
    from tenancy.keys import hash_key
    from tenancy.models import ApiKey
    from tenancy.services import api_key_issue

    given = os.environ.get("PROMPTMETRICS_ADMIN_KEY", "").strip()
    actor = Actor(api_key_name="promptmetrics-server")
    scopes = "read,write,admin"
    if given:
        if not ApiKey.objects.filter(key_hash=hash_key(given)).exists():
            api_key_issue(
                name=BOOTSTRAP_KEY_NAME, scopes=scopes, workspace=None, actor=actor, plaintext=given
            )
            _out("Registered PROMPTMETRICS_ADMIN_KEY as a master key (scopes read,write,admin).")
        return
    if ApiKey.objects.exists():
        return
    _, plaintext = api_key_issue(name=BOOTSTRAP_KEY_NAME, scopes=scopes, workspace=None, actor=actor)
    _out(
        "\n"
        "  Your admin API key (master, scopes read,write,admin); it is shown only this once:\n\n"
        f"      {plaintext}\n\n"
        "  Use it as the X-API-Key header. Mint narrower keys with POST /v1/api-keys.\n"
    )


def _static_fingerprint() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from django.contrib.staticfiles.finders import get_finders

    try:
        parts = [version("promptmetrics"), version("django")]
    except PackageNotFoundError:
        parts = ["source"]
    # Every file collectstatic would copy (project, apps, plotly.js): an edited stylesheet in an
    # editable install changes no version number.
    for finder in get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            parts.append(f"{storage.path(path)}:{storage.get_modified_time(path).timestamp()}")
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def _collect_static() -> None:
    from django.conf import settings
    from django.core.management import call_command

    stamp = Path(settings.STATIC_ROOT) / ".fingerprint"
    fingerprint = _static_fingerprint()
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    _out("Collecting static files...")
    call_command("collectstatic", interactive=False, verbosity=0)
    stamp.write_text(fingerprint)


def _default_workers() -> int:
    # One single-threaded process per core: on the 2-core reference machine this gave the best
    # tail latency (threads of one process queue on the GIL) within the memory budget; THREADS > 1
    # switches to gunicorn's threaded worker for deployments with slow clients or slow I/O.
    return max(2, os.cpu_count() or 1)


def serve(host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    from config.wsgi import application

    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "graceful_timeout": env_int("GRACEFUL_TIMEOUT", 30, minimum=1),
        "timeout": env_int("WORKER_TIMEOUT", 60, minimum=1),
        "keepalive": 5,
        "accesslog": "-" if os.environ.get("ACCESS_LOG", "").lower() in {"1", "true"} else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "promptmetrics",
        # gunicorn 24+ opens a runtime control socket at one fixed path per user; several servers on
        # one machine would fight over it, and nothing here uses it.
        "control_socket_disable": True,
        "post_fork": _remember_arbiter,
        "post_worker_init": _honour_early_stop,
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)

        def load(self) -> Any:
            return application

    _preload()
    _out(f"PromptMetrics listening on http://{host}:{port} ({workers} workers x {threads} threads)")
    Server().run()


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def _remember_arbiter(arbiter: Any, worker: Any) -> None:
    worker.promptmetrics_arbiter = arbiter


def _honour_early_stop(worker: Any) -> None:
    """Stop a worker that was told to stop while it was still starting.

    Until a new worker installs its own signal handlers it runs the master's, which only queue the
    signal in the worker's copy of the master; gunicorn never looks at that copy, so a SIGTERM sent
    right after start left the worker serving until the graceful timeout killed it (30 s, exit -9).
    """
    queue = worker.promptmetrics_arbiter.SIG_QUEUE
    while not queue.empty():
        if queue.get_nowait() in _STOP_SIGNALS:
            worker.alive = False


def _preload() -> None:
    """Import everything a request needs in the master, then freeze it out of the garbage collector.

    Workers fork with the URLconf, views and serializers already loaded (shared copy-on-write), and
    ``gc.freeze()`` keeps those long-lived objects out of every collection in the workers: measured
    ~10 % less CPU per request and no more 30-40 ms full-collection pauses in the latency tail.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["manage"]:
        manage(argv[1:])
        return
    try:
        _run(argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake deserves one clear line, not a traceback.
        raise SystemExit(f"promptmetrics-server: {exc}") from None


def _run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="promptmetrics-server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=env_str("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env_int("PORT", 3000, minimum=1, maximum=65535))
    parser.add_argument(
        "--workers", type=int, default=env_int("WEB_CONCURRENCY", _default_workers(), minimum=1)
    )
    parser.add_argument("--threads", type=int, default=env_int("THREADS", 1, minimum=1))
    args = parser.parse_args(argv)
    setup_django()
    bootstrap()
    serve(args.host, args.port, args.workers, args.threads)


def manage(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["promptmetrics-manage", *argv])
