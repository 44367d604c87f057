"""A local Zenodo-API server for tests (Flask, on 127.0.0.1, a random port).

It implements the parts of Zenodo's documented REST API that the publisher and the
downloader use, with the documented shapes:

- ``POST /api/deposit/depositions`` → 201 draft (``id``, ``links.bucket``,
  ``metadata.prereserve_doi``);
- ``GET|PUT /api/deposit/depositions/{id}`` (PUT: ``{"metadata": …}``, validated: 400
  ``{message, status, errors: [{field, message}]}``);
- ``GET /api/deposit/depositions/{id}/files`` (``id``, ``filename``, ``filesize``, hex
  ``checksum``), ``DELETE …/files/{file_id}`` → 204;
- ``PUT /api/files/{bucket}/{name}`` (raw body) → 201 ``{key, size, checksum: "md5:…"}``;
- ``POST …/actions/newversion`` → the *original* deposition with ``links.latest_draft``;
  the new draft inherits the files;
- ``POST …/actions/publish`` → 202 with ``doi``, ``conceptdoi``, ``record_id``;
- ``GET /api/records/{id}`` (files as ``key`` + ``"md5:…"``, or, for records marked
  old-style, ``filename`` + hex checksum) and ``…/files/{key}/content`` (with ``Range``).

Tokens map to scopes; a missing or unknown token gets 401, a token without
``deposit:actions`` gets 403 on publish/newversion. Faults are injected with
:meth:`FakeZenodo.fail` (status + ``Retry-After``), :meth:`FakeZenodo.corrupt_upload`
(the stored bytes differ, so the md5 does), :meth:`FakeZenodo.drop_download` (the
connection closes after N bytes) and :meth:`FakeZenodo.corrupt_download`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.serving import make_server

REQUIRED = ("upload_type", "title", "creators", "description", "access_right", "license")


def _err(status: int, message: str, errors=None):
    body = {"status": status, "message": message}
    if errors:
        body["errors"] = errors
    return jsonify(body), status


class FakeZenodo:
    """The server; ``url`` is its API base (``http://127.0.0.1:PORT/api``)."""

    def __init__(self, tokens: dict[str, set[str]] | None = None):
        self.tokens = tokens if tokens is not None else {}
        self.depositions: dict[int, dict] = {}
        self.blobs: dict[int, dict[str, bytes]] = {}  # deposition id -> name -> bytes
        self.file_ids: dict[int, dict[str, str]] = {}
        self.buckets: dict[str, int] = {}
        self.concept_draft: dict[int, int] = {}  # concept id -> open draft id
        self.old_style_records: set[int] = set()
        self.requests: list[dict] = []
        self._faults: list[dict] = []
        self._corrupt_uploads: dict[str, int] = {}
        self._drops: dict[str, tuple[int, int]] = {}
        self._corrupt_downloads: set[str] = set()
        self._next = 1000
        self._lock = threading.Lock()
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.url = self.base + "/api"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ control
    def start(self) -> FakeZenodo:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def fail(self, method: str, path_regex: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """The next ``times`` requests matching answer ``status`` (JSON error body)."""
        self._faults.append({"method": method, "re": re.compile(path_regex), "status": status, "times": times,
                             "retry_after": retry_after})

    def corrupt_upload(self, name: str, times: int = 1) -> None:
        """The next ``times`` uploads of ``name`` are stored with a flipped byte."""
        self._corrupt_uploads[name] = times

    def drop_download(self, name: str, after: int, times: int = 1) -> None:
        """The next ``times`` downloads of ``name`` close the connection after ``after`` bytes."""
        self._drops[name] = (after, times)

    def corrupt_download(self, name: str) -> None:
        """Every download of ``name`` serves a flipped byte."""
        self._corrupt_downloads.add(name)

    def deposition_count(self) -> int:
        return len(self.depositions)

    # ------------------------------------------------------------------ model
    def _new_id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _links(self, d: dict) -> dict:
        api = self.url
        links = {"self": f"{api}/deposit/depositions/{d['id']}", "bucket": f"{api}/files/{d['bucket']}",
                 "publish": f"{api}/deposit/depositions/{d['id']}/actions/publish",
                 "newversion": f"{api}/deposit/depositions/{d['id']}/actions/newversion",
                 "html": f"{self.base}/deposit/{d['id']}"}
        draft = self.concept_draft.get(d["conceptrecid"])
        if draft is not None:
            links["latest_draft"] = f"{api}/deposit/depositions/{draft}"
        return links

    def _files(self, dep_id: int) -> list[dict]:
        return [{"id": self.file_ids[dep_id][n], "filename": n, "filesize": len(b),
                 "checksum": hashlib.md5(b).hexdigest(),
                 "links": {"self": f"{self.url}/deposit/depositions/{dep_id}/files/{self.file_ids[dep_id][n]}",
                           "download": f"{self.url}/records/{dep_id}/files/{n}/content"}}
                for n, b in sorted(self.blobs[dep_id].items())]

    def _view(self, dep_id: int) -> dict:
        d = self.depositions[dep_id]
        out = {k: v for k, v in d.items() if k != "bucket"}
        out["links"] = self._links(d)
        out["files"] = self._files(dep_id)
        return out

    def _create(self, concept: int | None = None, metadata: dict | None = None) -> int:
        dep_id = self._new_id()
        concept = concept if concept is not None else self._new_id()
        bucket = str(uuid.uuid4())
        md = dict(metadata or {})
        md["prereserve_doi"] = {"doi": f"10.5072/zenodo.{dep_id}", "recid": dep_id}
        self.depositions[dep_id] = {"id": dep_id, "record_id": dep_id, "conceptrecid": concept, "doi": "",
                                    "state": "unsubmitted", "submitted": False, "metadata": md, "bucket": bucket}
        if any(d["conceptrecid"] == concept and d["submitted"] for d in self.depositions.values()):
            self.depositions[dep_id]["conceptdoi"] = f"10.5072/zenodo.{concept}"
        self.blobs[dep_id], self.file_ids[dep_id] = {}, {}
        self.buckets[bucket] = dep_id
        return dep_id

    def _record(self, rec_id: int) -> dict:
        d = self.depositions[rec_id]
        siblings = sorted(x["id"] for x in self.depositions.values()
                          if x["conceptrecid"] == d["conceptrecid"] and x["submitted"])
        files = []
        for n, b in sorted(self.blobs[rec_id].items()):
            content = f"{self.url}/records/{rec_id}/files/{n}/content"
            if rec_id in self.old_style_records:
                files.append({"filename": n, "filesize": len(b), "checksum": hashlib.md5(b).hexdigest(),
                              "links": {"download": content}})
            else:
                files.append({"key": n, "size": len(b), "checksum": "md5:" + hashlib.md5(b).hexdigest(),
                              "links": {"self": content}})
        md = {k: v for k, v in d["metadata"].items() if k != "prereserve_doi"}
        md["relations"] = {"version": [{"index": siblings.index(rec_id), "is_last": rec_id == siblings[-1],
                                        "count": len(siblings)}]}
        return {"id": rec_id, "doi": d["doi"], "conceptdoi": d.get("conceptdoi"), "metadata": md, "files": files}

    # ------------------------------------------------------------------ app
    def _make_app(self) -> Flask:
        app = Flask("fake-zenodo")
        srv = self

        @app.before_request
        def _before():
            srv.requests.append({"method": request.method, "path": request.path,
                                 "range": request.headers.get("Range")})
            for f in srv._faults:
                if f["times"] > 0 and f["method"] == request.method and f["re"].search(request.path):
                    f["times"] -= 1
                    request.get_data()  # drain an upload body
                    resp, status = _err(f["status"], "Too many requests" if f["status"] == 429 else "Internal error")
                    if f["retry_after"] is not None:
                        resp.headers["Retry-After"] = f["retry_after"]
                    return resp, status
            if request.path.startswith(("/api/deposit", "/api/files")):
                auth = request.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else request.args.get("access_token")
                if token not in srv.tokens:
                    request.get_data()
                    return _err(401, "The server could not verify that you are authorized to access the URL "
                                     "requested. You either supplied the wrong credentials (e.g. a bad password), "
                                     "or your browser doesn't understand how to supply the credentials required.")
                request.environ["scopes"] = srv.tokens[token]
            return None

        def dep_or_404(dep_id):
            if dep_id not in srv.depositions:
                return None, _err(404, "PID does not exist.")
            return srv.depositions[dep_id], None

        @app.get("/api/deposit/depositions")
        def list_depositions():
            if "deposit:write" not in request.environ["scopes"]:
                return _err(403, "You don't have the permission to access the requested resource.")
            return jsonify([srv._view(d) for d in list(srv.depositions)[:int(request.args.get("size", 10))]])

        @app.post("/api/deposit/depositions")
        def create():
            body = request.get_json(silent=True) or {}
            md = {k: v for k, v in (body.get("metadata") or {}).items() if k != "prereserve_doi"}
            return jsonify(srv._view(srv._create(metadata=md))), 201

        @app.route("/api/deposit/depositions/<int:dep_id>", methods=["GET", "PUT"])
        def deposition(dep_id):
            d, err = dep_or_404(dep_id)
            if err:
                return err
            if request.method == "GET":
                return jsonify(srv._view(dep_id))
            if d["submitted"]:
                return _err(400, "The deposition is published and cannot be edited.")
            md = (request.get_json(silent=True) or {}).get("metadata")
            if not isinstance(md, dict):
                return _err(400, "Validation error.", [{"field": "metadata", "message": "Missing data for required field."}])
            errors = [{"field": f"metadata.{k}", "message": "Missing data for required field."}
                      for k in REQUIRED if not md.get(k)]
            if md.get("upload_type") and md["upload_type"] != "dataset":
                errors.append({"field": "metadata.upload_type", "message": "Invalid upload type."})
            for i, c in enumerate(md.get("creators") or []):
                if not isinstance(c, dict) or not c.get("name"):
                    errors.append({"field": f"metadata.creators.{i}.name", "message": "Name is required."})
            if errors:
                return _err(400, "Validation error.", errors)
            d["metadata"] = {**md, "prereserve_doi": d["metadata"]["prereserve_doi"]}
            return jsonify(srv._view(dep_id))

        @app.get("/api/deposit/depositions/<int:dep_id>/files")
        def files(dep_id):
            _, err = dep_or_404(dep_id)
            return err or jsonify(srv._files(dep_id))

        @app.delete("/api/deposit/depositions/<int:dep_id>/files/<file_id>")
        def delete_file(dep_id, file_id):
            d, err = dep_or_404(dep_id)
            if err:
                return err
            if d["submitted"]:
                return _err(400, "Files of a published deposition cannot be deleted.")
            for n, fid in list(srv.file_ids[dep_id].items()):
                if fid == file_id:
                    del srv.file_ids[dep_id][n], srv.blobs[dep_id][n]
                    return Response(status=204)
            return _err(404, "File does not exist.")

        @app.put("/api/files/<bucket>/<path:name>")
        def upload(bucket, name):
            dep_id = srv.buckets.get(bucket)
            if dep_id is None:
                return _err(404, "Bucket does not exist.")
            if srv.depositions[dep_id]["submitted"]:
                return _err(403, "Bucket is locked (the deposition is published).")
            data = request.get_data()
            if srv._corrupt_uploads.get(name, 0) > 0:
                srv._corrupt_uploads[name] -= 1
                data = bytes([data[0] ^ 0xFF]) + data[1:] if data else b"x"
            srv.blobs[dep_id][name] = data
            srv.file_ids[dep_id][name] = str(uuid.uuid4())
            return jsonify({"key": name, "size": len(data), "checksum": "md5:" + hashlib.md5(data).hexdigest(),
                            "links": {"self": f"{srv.url}/files/{bucket}/{name}"}}), 201

        def action_target(dep_id):
            """The deposition of an ``actions/…`` call, or the 404/403 answer."""
            d, err = dep_or_404(dep_id)
            if err is None and "deposit:actions" not in request.environ["scopes"]:
                err = _err(403, "You don't have the permission to perform this action (deposit:actions).")
            return d, err

        @app.post("/api/deposit/depositions/<int:dep_id>/actions/newversion")
        def newversion(dep_id):
            d, err = action_target(dep_id)
            if err:
                return err
            if not d["submitted"]:
                return _err(400, "Only published depositions can have new versions.")
            concept = d["conceptrecid"]
            if concept not in srv.concept_draft:
                md = {k: v for k, v in d["metadata"].items() if k not in ("prereserve_doi", "version", "doi")}
                new = srv._create(concept=concept, metadata=md)
                latest = max(x["id"] for x in srv.depositions.values() if x["conceptrecid"] == concept and x["submitted"])
                srv.blobs[new] = dict(srv.blobs[latest])
                srv.file_ids[new] = {n: str(uuid.uuid4()) for n in srv.blobs[new]}
                srv.concept_draft[concept] = new
            return jsonify(srv._view(dep_id)), 201

        @app.post("/api/deposit/depositions/<int:dep_id>/actions/publish")
        def publish(dep_id):
            d, err = action_target(dep_id)
            if err:
                return err
            if d["submitted"]:
                return _err(400, "The deposition is already published.")
            missing = [{"field": f"metadata.{k}", "message": "Missing data for required field."}
                       for k in REQUIRED if not d["metadata"].get(k)]
            if missing:
                return _err(400, "Validation error.", missing)
            if not srv.blobs[dep_id]:
                return _err(400, "Minimum one file must be provided.")
            d.update(state="done", submitted=True, doi=d["metadata"]["prereserve_doi"]["doi"],
                     conceptdoi=f"10.5072/zenodo.{d['conceptrecid']}")
            srv.concept_draft.pop(d["conceptrecid"], None)
            return jsonify(srv._view(dep_id)), 202

        @app.get("/api/records/<int:rec_id>")
        def record(rec_id):
            d = srv.depositions.get(rec_id)
            if d is None or not d["submitted"]:
                return _err(404, "PID does not exist.")
            return jsonify(srv._record(rec_id))

        @app.get("/api/records/<int:rec_id>/files/<path:name>/content")
        def content(rec_id, name):
            d = srv.depositions.get(rec_id)
            if d is None or not d["submitted"] or name not in srv.blobs[rec_id]:
                return _err(404, "File does not exist.")
            data = srv.blobs[rec_id][name]
            if name in srv._corrupt_downloads:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            after, times = srv._drops.get(name, (0, 0))
            if times > 0 and not request.headers.get("Range"):
                srv._drops[name] = (after, times - 1)

                def partial():
                    yield data[:after]
                    raise ConnectionAbortedError("test: connection dropped")

                return Response(partial(), headers={"Content-Length": str(len(data))},
                                mimetype="application/octet-stream")
            import io

            return send_file(io.BytesIO(data), mimetype="application/octet-stream", conditional=True,
                             download_name=name, etag=False)

        return app
