"""The registry of published dataset versions shipped with the package.

``rnamotif_data/versions.json`` maps each published version to its Zenodo record and
files, the way pooch keeps a ``{file: "sha256:…"}`` registry per version (STYLE.md)::

    {"format": 1,
     "versions": {
       "1.0.0": {"record_id": 123, "doi": "10.5281/zenodo.123",
                 "concept_doi": "10.5281/zenodo.122", "api_url": "https://zenodo.org/api",
                 "published": "2026-11-21", "archive": "rnamotif-data-1.0.0.zarr.zip",
                 "notes": "first release",
                 "files": [{"name": "rnamotif-data-1.0.0.zarr.zip", "size": 123456,
                            "sha256": "…", "md5": "…",
                            "url": "https://zenodo.org/api/records/123/files/…/content"}]}}}

``rnamotif publish`` adds a version after Zenodo publishes it;
:mod:`rnamotif_data.storage.download` reads it to fetch and verify a version. The environment
variable ``RNAMOTIF_DATA_REGISTRY`` names another registry file (a mirror, or a
sandbox publication); the ``registry=`` arguments take precedence over it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from rnamotif_data.errors import (
    RegistryError,
    )

__all__ = ["REGISTRY_FILE", "ENV_REGISTRY", "ReleaseFile", "Release", "registry_path",
           "load_registry", "get_release", "latest_version", "newer_versions", "add_release", "parse_version"]

#: The registry shipped with the package.
REGISTRY_FILE = Path(__file__).with_name("versions.json")
#: Environment variable naming another registry file.
ENV_REGISTRY = "RNAMOTIF_DATA_REGISTRY"
_FORMAT = 1


@dataclass(frozen=True)
class ReleaseFile:
    """One file of a published version.

    Attributes
    ----------
    name: file name on the Zenodo record (no directories).
    size: bytes.
    sha256, md5: hex digests of the content.
    url: where the content is downloaded from (the records API ``…/files/{name}/content``).
    """

    name: str
    size: int
    sha256: str
    md5: str
    url: str


@dataclass(frozen=True)
class Release:
    """A published version: its Zenodo record, DOIs and files (see the module docstring)."""

    version: str
    record_id: int
    doi: str
    concept_doi: str
    api_url: str
    published: str
    archive: str
    files: tuple[ReleaseFile, ...]
    notes: str = ""

    def file(self, name: str) -> ReleaseFile:
        """The file called ``name``.

        Raises
        ------
        RegistryError
            If the release has no such file.
        """
        for f in self.files:
            if f.name == name:
                return f
        raise RegistryError(f"version {self.version} has no file {name!r} (files: "
                            f"{', '.join(f.name for f in self.files)})")

    def to_json(self) -> dict:
        """The registry entry (without the version key)."""
        d = asdict(self)
        d.pop("version")
        d["files"] = [asdict(f) for f in self.files]
        return d

    @classmethod
    def from_json(cls, version: str, d: dict, source: str = "registry") -> Release:
        """Parse one registry entry; raises :class:`RegistryError` naming the missing key."""
        try:
            files = tuple(ReleaseFile(name=f["name"], size=int(f["size"]), sha256=f["sha256"], md5=f["md5"],
                                      url=f["url"]) for f in d["files"])
            release = cls(version=version, record_id=int(d["record_id"]), doi=d["doi"], concept_doi=d["concept_doi"],
                          api_url=d["api_url"], published=d["published"], archive=d["archive"], files=files,
                          notes=d.get("notes", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"{source}: version {version}: malformed entry ({type(exc).__name__}: {exc})") from None
        for name in [release.archive] + [f.name for f in files]:
            check_file_name(name, f"{source}: version {version}")
        return release


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$")


def check_file_name(name: str, where: str) -> str:
    """A release file name must be a plain file name (letters, digits, ``._+-``; no
    folder, no ``..``, no absolute path): it is joined to the version folder on download.

    Raises
    ------
    RegistryError
        Naming ``where`` and the name, before any file is written.
    """
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in (".", ".."):
        raise RegistryError(f"{where}: file name {name!r} is not a plain file name; refusing it")
    return name


def parse_version(version: str) -> Version:
    """A dataset version as a PEP 440 :class:`packaging.version.Version` (``1.0.0``, ``1.1.0rc1``).

    Raises
    ------
    RegistryError
        If ``version`` is not a valid version string.
    """
    try:
        return Version(str(version))
    except InvalidVersion:
        raise RegistryError(f"{version!r} is not a valid dataset version (use e.g. 1.0.0)") from None


def registry_path(path: str | os.PathLike | None = None) -> Path:
    """The registry file in use: ``path``, else ``$RNAMOTIF_DATA_REGISTRY``, else the shipped one."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_REGISTRY)
    return Path(env) if env else REGISTRY_FILE


def load_registry(path: str | os.PathLike | None = None) -> dict[str, Release]:
    """All registered versions, ``{version: Release}``, oldest first.

    A missing file is an empty registry.

    Raises
    ------
    RegistryError
        If the file is not a registry (bad JSON, unknown format, malformed entry).
    """
    p = registry_path(path)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("versions"), dict):
        raise RegistryError(f"{p}: not an rnamotif-data versions registry (format {_FORMAT})")
    releases = {v: Release.from_json(v, d, str(p)) for v, d in data["versions"].items()}
    return dict(sorted(releases.items(), key=lambda kv: parse_version(kv[0])))


def get_release(version: str | None = None, path: str | os.PathLike | None = None) -> Release:
    """The registered ``version`` (default: the latest).

    Raises
    ------
    RegistryError
        If the registry file does not exist, no version is registered, or ``version`` is
        not (the message lists those that are).
    """
    if not registry_path(path).exists():  # a registry named (--registry, $RNAMOTIF_DATA_REGISTRY) that is not there
        raise RegistryError(f"{registry_path(path)}: no such registry file; check --registry or ${ENV_REGISTRY}")
    releases = load_registry(path)
    if not releases:
        raise RegistryError(f"{registry_path(path)}: no published version is registered yet; build a store "
                            "with 'rnamotif build' instead")
    if version is None:
        return releases[next(reversed(releases))]
    parse_version(version)
    if version not in releases:
        raise RegistryError(f"dataset version {version} is not in {registry_path(path)}; known versions: "
                            f"{', '.join(releases)} (a newer rnamotif-data may know more)")
    return releases[version]


def latest_version(path: str | os.PathLike | None = None) -> str | None:
    """The highest registered version, or None."""
    releases = load_registry(path)
    return next(reversed(releases)) if releases else None


def newer_versions(version: str, path: str | os.PathLike | None = None) -> list[str]:
    """Registered versions higher than ``version``, ascending."""
    v = parse_version(version)
    return [k for k in load_registry(path) if parse_version(k) > v]


def add_release(release: Release, path: str | os.PathLike | None = None) -> Path:
    """Add ``release`` to the registry file (written atomically, versions sorted); returns the path.

    Raises
    ------
    RegistryError
        If the version is already registered.
    """
    p = registry_path(path)
    releases = load_registry(p)
    if release.version in releases:
        raise RegistryError(f"{p}: version {release.version} is already registered "
                            f"(DOI {releases[release.version].doi})")
    releases[release.version] = release
    ordered = sorted(releases.values(), key=lambda r: parse_version(r.version))
    text = json.dumps({"format": _FORMAT, "versions": {r.version: r.to_json() for r in ordered}}, indent=2) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, p)
    return p
