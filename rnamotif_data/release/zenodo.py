"""A small Zenodo REST client for publishing dataset versions (the legacy deposit API).

Zenodo's documented flow (https://developers.zenodo.org):

- ``POST /api/deposit/depositions`` → 201, the new draft (``id``, ``links.bucket``);
- ``POST /api/deposit/depositions/{id}/actions/newversion`` → the *original* deposition;
  the new draft is at ``links.latest_draft`` and **inherits the previous version's files**,
  which must be deleted or replaced before publishing;
- ``PUT {links.bucket}/{name}`` with the raw body → 201 with ``checksum: "md5:…"``;
- ``GET``/``DELETE /api/deposit/depositions/{id}/files[/{file_id}]`` (entries have
  ``id``, ``filename``, ``filesize`` and a hex md5 ``checksum``);
- ``PUT /api/deposit/depositions/{id}`` with ``{"metadata": {...}}``;
- ``POST /api/deposit/depositions/{id}/actions/publish`` → 202 with ``doi``,
  ``conceptdoi`` and ``record_id``.

Errors are JSON ``{message, status, errors: [{field, message}]}``; 401 means a bad or
missing token, 403 a token without the ``deposit:write``/``deposit:actions`` scopes.
Rate limits are 100 requests/min and 5,000/h (429 beyond): 429 and 5xx answers and
dropped connections are retried with exponential backoff, honouring ``Retry-After``.
A record holds at most 100 files and 50 GB.

The token is sent only in the ``Authorization`` header (never in a URL), is never
logged, and is scrubbed from every exception message this module raises.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from rnamotif_data.errors import ZenodoAuthError, ZenodoError

log = logging.getLogger("rnamotif_data.release.zenodo")

__all__ = ["ZENODO_API", "SANDBOX_API", "TOKEN_ENV", "MAX_FILES", "MAX_BYTES",
           "ZenodoClient", "token_from_env", "md5_file", "check_limits"]

ZENODO_API = "https://zenodo.org/api"
SANDBOX_API = "https://sandbox.zenodo.org/api"
#: The only place the token is read from.
TOKEN_ENV = "ZENODO_TOKEN"
MAX_FILES = 100
MAX_BYTES = 50 * 10**9
_RETRY_STATUS = {429, 500, 502, 503, 504}


def token_from_env() -> str:
    """The Zenodo token from ``$ZENODO_TOKEN``.

    Raises
    ------
    ZenodoAuthError
        If the variable is unset or empty, or holds characters a token cannot have
        (whitespace inside, control or non-ASCII characters): the message says which
        kind and where, never the token.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ZenodoAuthError(f"${TOKEN_ENV} is not set: create a personal access token with the deposit:write "
                              "and deposit:actions scopes (zenodo.org, or sandbox.zenodo.org for --sandbox) "
                              f"and export it as {TOKEN_ENV}")
    for k, c in enumerate(token):
        if not (33 <= ord(c) <= 126):
            kind = "whitespace" if c.isspace() else ("a non-ASCII character" if ord(c) > 126 else "a control character")
            raise ZenodoAuthError(f"${TOKEN_ENV} holds {kind} at position {k + 1} of {len(token)}; a Zenodo token is "
                                  "printable ASCII only: copy it again (the token is not shown)")
    return token


def md5_file(path: str | os.PathLike) -> str:
    """md5 (hex) of a file, read in 4 MiB blocks (Zenodo's upload checksum)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def check_limits(sizes: dict[str, int]) -> None:
    """Refuse a package Zenodo would reject: more than 100 files or 50 GB per record, or a
    file name with a directory part.

    Raises
    ------
    ZenodoError
        Naming the limit and the package's figure.
    """
    if len(sizes) > MAX_FILES:
        raise ZenodoError(f"{len(sizes)} files: Zenodo allows at most {MAX_FILES} files per record")
    total = sum(sizes.values())
    if total > MAX_BYTES:
        raise ZenodoError(f"{total / 1e9:.1f} GB: Zenodo allows at most {MAX_BYTES / 1e9:.0f} GB per record")
    bad = [n for n in sizes if "/" in n or "\\" in n or not n]
    if bad:
        raise ZenodoError(f"file names must not contain directories: {bad}")


def _retry_after(resp: requests.Response | None, attempt: int, backoff: float, max_wait: float) -> float:
    """Seconds to wait: ``Retry-After`` (seconds or an HTTP date) if given, else exponential."""
    value = resp.headers.get("Retry-After") if resp is not None else None
    if value:
        try:
            wait = float(value)
        except ValueError:
            try:
                wait = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                wait = backoff * 2 ** attempt
        return min(max(wait, 0.0), max_wait)
    return min(backoff * 2 ** attempt, max_wait)


class ZenodoClient:
    """Zenodo deposit API client.

    Parameters
    ----------
    api_url:
        ``https://zenodo.org/api`` (default), ``https://sandbox.zenodo.org/api``, or a
        compatible server (tests run one on 127.0.0.1).
    token:
        Personal access token (use :func:`token_from_env`).
    max_retries:
        Retries of one request after 429, 5xx or a dropped connection.
    backoff:
        First wait in seconds when the server gives no ``Retry-After``; doubles each retry.
    max_wait:
        Longest single wait in seconds.
    timeout:
        ``(connect, read)`` timeout in seconds for each request.
    sleep:
        The waiting function (tests pass a recorder).
    """

    def __init__(self, api_url: str = ZENODO_API, token: str = "", *, max_retries: int = 6, backoff: float = 2.0,
                 max_wait: float = 300.0, timeout: tuple[float, float] = (10.0, 600.0),
                 sleep: Callable[[float], None] = time.sleep):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.max_retries, self.backoff, self.max_wait, self.timeout = max_retries, backoff, max_wait, timeout
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "rnamotif-data publisher"

    def __repr__(self) -> str:
        return f"ZenodoClient({self.api_url!r})"

    # ------------------------------------------------------------------ plumbing
    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.api_url}/{path_or_url.lstrip('/')}"

    def _error(self, method: str, url: str, resp: requests.Response) -> ZenodoError:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = body.get("message") or resp.reason or "no message"
        errors = body.get("errors") or []
        detail = "; ".join(f"{e.get('field', '?')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
        text = f"Zenodo {method} {url} -> {resp.status_code}: {message}" + (f" ({detail})" if detail else "")
        if resp.status_code == 401:
            text += (f". The token in ${TOKEN_ENV} was refused; sandbox.zenodo.org and zenodo.org tokens differ, "
                     "and a token must have the deposit:write and deposit:actions scopes")
            return ZenodoAuthError(self._scrub(text), resp.status_code, errors)
        if resp.status_code == 403:
            text += ". The token lacks a scope this call needs (deposit:write, deposit:actions) or the deposition "\
                    "belongs to another account"
            return ZenodoAuthError(self._scrub(text), resp.status_code, errors)
        if resp.status_code == 404:
            text += (". Zenodo does not know this deposition for this account (an id from another account, or "
                     "from sandbox.zenodo.org vs zenodo.org?)")
        elif resp.status_code == 429:
            text += ". Rate limit (100 requests/min, 5,000/h); run the same command again later to resume"
        elif resp.status_code >= 500:
            text += ". Zenodo is failing; run the same command again later to resume the draft"
        return ZenodoError(self._scrub(text), resp.status_code, errors)

    def request(self, method: str, path_or_url: str, *, ok: tuple[int, ...] = (200, 201, 202, 204),
                body_path: Path | None = None, **kwargs) -> requests.Response:
        """One API call with retries on 429/5xx/connection errors (``Retry-After`` honoured).

        ``body_path`` streams a file as the raw body (reopened on each attempt).

        Raises
        ------
        ZenodoAuthError
            On 401/403.
        ZenodoError
            On any other non-``ok`` status, or when the retries are used up.
        """
        url = self._url(path_or_url)
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        for attempt in range(self.max_retries + 1):
            resp = None
            try:
                if body_path is not None:
                    with open(body_path, "rb") as f:
                        resp = self._session.request(method, url, data=f, headers=headers, timeout=self.timeout,
                                                     **kwargs)
                else:
                    resp = self._session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.max_retries:
                    raise ZenodoError(self._scrub(f"Zenodo {method} {url}: {type(exc).__name__} after "
                                                  f"{attempt + 1} attempts: {exc}")) from None
                wait = _retry_after(None, attempt, self.backoff, self.max_wait)
                log.warning("%s %s: %s; retrying in %.1f s", method, url, type(exc).__name__, wait)
                self._sleep(wait)
                continue
            if resp.status_code in ok:
                return resp
            if resp.status_code in _RETRY_STATUS and attempt < self.max_retries:
                wait = _retry_after(resp, attempt, self.backoff, self.max_wait)
                log.warning("%s %s -> %d; retrying in %.1f s (attempt %d of %d)", method, url, resp.status_code,
                            wait, attempt + 1, self.max_retries)
                self._sleep(wait)
                continue
            raise self._error(method, url, resp)
        raise AssertionError("unreachable")

    def _json(self, method: str, path_or_url: str, **kwargs) -> Any:  # a dict, or a list (GET …/files)
        return self.request(method, path_or_url, **kwargs).json()

    # ------------------------------------------------------------------ depositions
    def check_token(self) -> None:
        """One authenticated call (list at most one of the user's depositions) so that a
        bad token, or one without ``deposit:write``, fails before any packaging or upload
        (``deposit:actions`` can only be checked by publishing).

        Raises
        ------
        ZenodoAuthError
            401 (bad token) or 403 (scope), with Zenodo's reason and never the token.
        """
        self.request("GET", "/deposit/depositions", params={"size": 1})

    def get_deposition(self, deposition_id: int | str) -> dict:
        """``GET /deposit/depositions/{id}``."""
        return self._json("GET", f"deposit/depositions/{deposition_id}")

    def create_deposition(self) -> dict:
        """A new, empty draft (``POST /deposit/depositions``) with a pre-reserved DOI."""
        return self._json("POST", "deposit/depositions", json={"metadata": {"prereserve_doi": True}}, ok=(201,))

    def new_version(self, deposition_id: int | str) -> dict:
        """The draft of a new version of a published deposition.

        Zenodo answers ``newversion`` with the *original* deposition; the draft is read
        from its ``links.latest_draft``. The draft carries the previous version's files.

        Raises
        ------
        ZenodoError
            If Zenodo does not name a draft.
        """
        original = self._json("POST", f"deposit/depositions/{deposition_id}/actions/newversion", ok=(200, 201))
        draft_url = (original.get("links") or {}).get("latest_draft")
        if not draft_url:
            raise ZenodoError(f"Zenodo newversion of deposition {deposition_id} returned no links.latest_draft")
        return self._json("GET", draft_url)

    def list_files(self, deposition: dict) -> list[dict]:
        """The draft's files (``GET …/files``): ``[{id, filename, filesize, checksum}]``."""
        return self._json("GET", f"deposit/depositions/{deposition['id']}/files")

    def delete_file(self, deposition: dict, file: dict) -> None:
        """Remove one file from a draft (``DELETE …/files/{file_id}``)."""
        self.request("DELETE", f"deposit/depositions/{deposition['id']}/files/{file['id']}", ok=(204, 200))

    def upload(self, deposition: dict, path: str | os.PathLike, name: str | None = None, *,
               md5: str | None = None, attempts: int = 3) -> dict:
        """Upload ``path`` to the draft's bucket as ``name`` and check Zenodo's md5.

        A mismatch (the file changed on the way) is uploaded again, up to ``attempts``
        times in all.

        Returns
        -------
        dict
            Zenodo's answer (``key``, ``size``, ``checksum: "md5:…"``).

        Raises
        ------
        ZenodoError
            If every attempt ends with a different md5 on the server.
        """
        path = Path(path)
        name = name or path.name
        md5 = md5 or md5_file(path)
        bucket = deposition["links"]["bucket"]
        got = None
        for attempt in range(1, attempts + 1):
            resp = self._json("PUT", f"{bucket}/{name}", body_path=path, ok=(200, 201),
                              headers={"Content-Type": "application/octet-stream"})
            got = str(resp.get("checksum", "")).removeprefix("md5:")
            if got == md5:
                return resp
            log.warning("%s: Zenodo's md5 %s differs from the local %s (attempt %d of %d); uploading again",
                        name, got, md5, attempt, attempts)
        raise ZenodoError(f"{name}: upload to deposition {deposition['id']} failed md5 verification "
                          f"{attempts} times (server {got}, local {md5})")

    def update_metadata(self, deposition: dict, metadata: dict) -> dict:
        """``PUT /deposit/depositions/{id}`` with ``{"metadata": metadata}``."""
        return self._json("PUT", f"deposit/depositions/{deposition['id']}", json={"metadata": metadata})

    def publish(self, deposition: dict) -> dict:
        """``POST …/actions/publish``; the published deposition (``doi``, ``conceptdoi``, ``record_id``)."""
        return self._json("POST", f"deposit/depositions/{deposition['id']}/actions/publish", ok=(202, 200))

    def file_url(self, record_id: int | str, name: str) -> str:
        """Download URL of a published file: ``{api}/records/{id}/files/{name}/content``."""
        return f"{self.api_url}/records/{record_id}/files/{name}/content"
