"""Read-only Git smart HTTP: ``git clone http://HOST/git/{workspace}.git``, served by dulwich.

Each workspace's prompt versions live in a bare repository (``GitStore.repo_path``). This view
serves its ``git-upload-pack`` service (clone, fetch, pull, ls-remote) over the stateless smart
HTTP protocol. Authentication is HTTP Basic with an API key as the password (any user name), so
both ``http://x:KEY@host/...`` URLs and git credential helpers work.

Only protocol v0 is spoken (dulwich's server has no v2). A git client announcing ``Git-Protocol:
version=2`` falls back to v0 when the advertisement does not start with ``version 2``, exactly as
with an old ``git http-backend``, so the header is deliberately ignored.

A workspace that exists but has no version yet is served as an empty repository: ``git clone``
succeeds with git's "You appear to have cloned an empty repository" warning, and a later
``git pull origin main`` fetches the first versions.

Errors are the usual JSON envelope, except for git clients (``User-Agent: git/...``): git prints
the body of a failed request (as ``remote: ...``) only when it is ``text/plain``, so they get the
message as plain text.
"""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from dulwich.errors import GitProtocolError, NotGitRepository
from dulwich.protocol import ReceivableProtocol
from dulwich.repo import BaseRepo, MemoryRepo, Repo
from dulwich.server import Backend, BackendRepo, UploadPackHandler

from config.errors import error_response
from registry.storage import get_store
from tenancy.authcache import key_cache
from tenancy.authentication import KeyRejected, record_key_use, verify_api_key
from tenancy.models import Scope, Workspace
from tenancy.ratelimit import rate_limit_hit

UPLOAD_PACK = "git-upload-pack"
RECEIVE_PACK = "git-receive-pack"
_REQUEST_CONTENT_TYPE = f"application/x-{UPLOAD_PACK}-request"
_WWW_AUTHENTICATE = 'Basic realm="promptmetrics"'
_NO_CACHE = {
    "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
    "Pragma": "no-cache",
    "Cache-Control": "no-cache, max-age=0, must-revalidate",
}
# Read-only because a version is a database row (index, labels, audit log) and a Git commit written
# together by the API; a pushed commit would exist in Git only, and could rewrite immutable history.
_READ_ONLY = (
    "This Git endpoint is read-only: prompt versions are created through the API "
    "(POST /v1/prompts), which keeps the database index, labels and audit log in step with Git."
)
# Cap on a gunzipped request body. The middleware limits the compressed size only, and a few KB of
# gzip can inflate to gigabytes. A fetch request is want/have lines: 64 MiB is about a million.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
# Responses are produced in full before the first byte is sent (in memory up to this size, then in a
# temporary file), so that a protocol error becomes a clean HTTP error rather than a truncated pack.
_SPOOL_BYTES = 4 * 1024 * 1024
_SEND_BLOCK = 64 * 1024


class _SingleRepoBackend(Backend):
    """A backend that can open exactly one repository, whatever path the handler asks for."""

    def __init__(self, repo: BaseRepo) -> None:
        self.repo = repo

    def open_repository(self, path: str) -> BackendRepo:
        return self.repo  # type: ignore[return-value]


class _Refusal(Exception):
    """A request ends early with an error response (auth, scope, workspace, rate limit, body)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _error(request: HttpRequest, refusal: _Refusal) -> HttpResponse:
    response: HttpResponse
    if request.META.get("HTTP_USER_AGENT", "").startswith("git/"):
        response = HttpResponse(
            refusal.message + "\n", status=refusal.status, content_type="text/plain; charset=utf-8"
        )
    else:
        response = error_response(request, refusal.status, message=refusal.message, code=refusal.code)
    for name, value in refusal.headers.items():
        response[name] = value
    return response


def _not_found(workspace: str) -> _Refusal:
    return _Refusal(404, "NOT_FOUND", f"Repository {workspace}.git not found")


@csrf_exempt
def git_http_view(request: HttpRequest, workspace: str, service_path: str) -> HttpResponse:
    """``/git/{workspace}.git/{service_path}``: the smart HTTP endpoints of upload-pack only."""
    try:
        if service_path == "info/refs" and request.method == "GET":
            service = request.GET.get("service")
            # Push is refused before authentication: no key may push, so asking for one is pointless.
            if service == RECEIVE_PACK:
                raise _Refusal(403, "FORBIDDEN", _READ_ONLY)
            if service != UPLOAD_PACK:
                # Dumb HTTP (no service) would hand out raw repository files; not served.
                raise _not_found(workspace)
            _authorize(request, workspace)
            return _serve(workspace, advertise=True, body=b"")
        if service_path == RECEIVE_PACK and request.method == "POST":
            raise _Refusal(403, "FORBIDDEN", _READ_ONLY)
        if service_path == UPLOAD_PACK and request.method == "POST":
            _authorize(request, workspace)
            return _serve(workspace, advertise=False, body=_request_body(request))
        raise _not_found(workspace)
    except _Refusal as refusal:
        return _error(request, refusal)


def _authorize(request: HttpRequest, workspace: str) -> None:
    """Basic auth with an API key that may read ``workspace``; raises _Refusal otherwise."""
    unauthorized = {"WWW-Authenticate": _WWW_AUTHENTICATE}
    password = _basic_password(request.META.get("HTTP_AUTHORIZATION", ""))
    if password is None:
        raise _Refusal(
            401, "UNAUTHORIZED", "Authentication required: use an API key as the password", unauthorized
        )
    try:
        snapshot, key_hash, now = verify_api_key(password)
    except KeyRejected as exc:
        raise _Refusal(401, "UNAUTHORIZED", str(exc), unauthorized) from None
    # Another workspace's repository is "not found", like an unknown one: a key must not be able to
    # probe which workspaces exist.
    if snapshot.workspace_id is None:
        if not _workspace_exists(workspace):
            raise _not_found(workspace)
    elif snapshot.workspace_id != workspace:
        raise _not_found(workspace)
    if Scope.READ not in snapshot.scopes:
        raise _Refusal(403, "FORBIDDEN", "Missing required scope: read")
    record_key_use(snapshot, now)
    result = rate_limit_hit(workspace_id=workspace, key_hash=key_hash)
    if result is not None and not result.allowed:
        raise _Refusal(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded", result.headers)


def _basic_password(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep and password else None


def _workspace_exists(workspace: str) -> bool:
    # Unlike the API, a master key does not create a workspace by naming it: a clone only reads.
    if workspace in key_cache.known_workspaces:
        return True
    if not Workspace.objects.filter(pk=workspace).exists():
        return False
    key_cache.known_workspaces.add(workspace)
    return True


def _request_body(request: HttpRequest) -> bytes:
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip()
    if content_type != _REQUEST_CONTENT_TYPE:
        # Also keeps cross-site HTML forms out: browsers cannot send this type without a preflight.
        raise _Refusal(415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type must be {_REQUEST_CONTENT_TYPE}")
    body = request.read()
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise _Refusal(415, "UNSUPPORTED_MEDIA_TYPE", f"Unsupported Content-Encoding: {encoding}")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise _Refusal(400, "BAD_REQUEST", f"Invalid gzip request body: {exc}") from exc
    if inflater.unconsumed_tail:
        raise _Refusal(
            413,
            "PAYLOAD_TOO_LARGE",
            f"Request body too large (limit {MAX_INFLATED_BYTES} bytes uncompressed)",
        )
    if not inflater.eof:
        raise _Refusal(400, "BAD_REQUEST", "Invalid gzip request body: truncated")
    return inflated


def _open_repo(workspace: str) -> BaseRepo:
    repo_path: Callable[[str], Path] | None = getattr(get_store(), "repo_path", None)
    if repo_path is None:
        raise _Refusal(404, "NOT_FOUND", "Git access needs the git storage driver (DRIVER=git)")
    try:
        return Repo(str(repo_path(workspace)))
    except NotGitRepository:
        # No version stored yet: the repository is created with the first one.
        return MemoryRepo()


def _serve(workspace: str, *, advertise: bool, body: bytes) -> HttpResponse:
    kind = "advertisement" if advertise else "result"
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - the response closes it
    try:
        repo = _open_repo(workspace)
        try:
            _upload_pack(repo, io.BytesIO(body).read, out, advertise=advertise)
        finally:
            repo.close()
    except GitProtocolError as exc:
        out.close()
        raise _Refusal(400, "BAD_REQUEST", f"Git protocol error: {exc}") from exc
    except BaseException:
        out.close()
        raise
    size = out.tell()
    out.seek(0)
    response = FileResponse(out, content_type=f"application/x-{UPLOAD_PACK}-{kind}")
    response.block_size = _SEND_BLOCK
    response["Content-Length"] = str(size)
    for name, value in _NO_CACHE.items():
        response[name] = value
    return response


def _upload_pack(repo: BaseRepo, read: Callable[[int], bytes], out: IO[bytes], *, advertise: bool) -> None:
    def write(data: bytes) -> int:
        return out.write(data)

    proto = ReceivableProtocol(read, write)
    args: Any = ["/"]
    handler = UploadPackHandler(
        _SingleRepoBackend(repo), args, proto, stateless_rpc=True, advertise_refs=advertise
    )
    if advertise:
        proto.write_pkt_line(f"# service={UPLOAD_PACK}\n".encode())
        proto.write_pkt_line(None)
    handler.handle()
