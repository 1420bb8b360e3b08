"""A model bundle fetched from a URL: the archive downloaded, checked, unpacked and loaded.

A deployment that keeps its bundles in an object store runs ``meshcast fetch-bundle`` in an init
container (the Helm chart's ``bundle.url``): the archive is a ``.tar.gz`` of the bundle's
folder (``tar -czf bundle.tar.gz -C bundles/default .``; one top folder holding the files is
accepted too), over http(s) (a presigned S3 or GCS link) or from a ``file://`` path.

Nothing is half done: the archive is downloaded and unpacked inside the destination under
temporary names, its sha256 checked, the bundle loaded (:func:`service.bundle.load_bundle`
checks every file against the manifest) and only then does it replace what the destination
held. The destination may be a mount point (an emptyDir), so its contents are replaced, not the
folder itself. A marker file written last records the archive's sha256: a restarted pod whose
destination already holds the archive asked for downloads nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from service.bundle import MANIFEST_FILE, Bundle, load_bundle

MARKER_FILE = ".archive-sha256"  # the archive the folder was unpacked from; written last
SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0  # per read: a stalled server fails the init container, which is retried
TEMPORARY_PREFIX = ".fetching-"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# (bytes so far, total bytes or None when the server does not say)
ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class FetchedBundle:
    bundle: Bundle
    sha256: str  # of the archive
    downloaded: bool  # False: the destination already held this archive


def fetch_bundle(
    url: str,
    dest: Path,
    sha256: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> FetchedBundle:
    """Download the bundle archive at ``url`` into the folder ``dest`` (see the module).

    Args:
        url: http(s):// or file:// address of a ``.tar.gz``.
        dest: the bundle's folder, created if missing; what it held is replaced. On any
            failure it is left as it was (a folder this call created is removed).
        sha256: the archive's expected digest (64 hex digits); None: not checked.
        on_progress: called as the download goes.

    Raises:
        ValueError: an unsupported URL, a digest that is not 64 hex digits or differs, an
            archive that is not a ``.tar.gz`` or holds unsafe paths, or a bundle that does not
            load.
        OSError: the download failed (urllib's URLError is one), or ``dest`` is not writable.
        BundleFileMissingError: the archive holds no manifest, or lacks a file it lists.
    """
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(f"{url}: a bundle is fetched over {', '.join(SCHEMES)}, not {scheme!r}")
    expected = sha256.lower() if sha256 else None
    if expected is not None and not SHA256_HEX.fullmatch(expected):
        raise ValueError(f"--sha256 {sha256}: a sha256 is 64 hexadecimal digits")
    # The outermost folder this call creates: removed again if the fetch fails.
    created = next((path for path in [*reversed(dest.parents), dest] if not path.exists()), None)
    try:
        return _fetch_into(url, dest, expected, on_progress)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _fetch_into(
    url: str, dest: Path, expected: str | None, on_progress: ProgressCallback | None
) -> FetchedBundle:
    dest.mkdir(parents=True, exist_ok=True)
    marker = dest / MARKER_FILE
    if expected is not None and marker.is_file() and marker.read_text().strip() == expected:
        return FetchedBundle(load_bundle(dest), expected, downloaded=False)
    with tempfile.TemporaryDirectory(prefix=TEMPORARY_PREFIX, dir=dest) as scratch:
        archive = Path(scratch) / "bundle.tar.gz"
        digest = _download(url, archive, on_progress)
        if expected is not None and digest != expected:
            raise ValueError(f"{url}: the archive's sha256 is {digest}, not {expected}")
        unpacked = _unpack(archive, Path(scratch) / "bundle")
        bundle = load_bundle(unpacked)  # every file against the manifest, before any is replaced
        for entry in dest.iterdir():  # the old bundle and its marker
            if entry.name == Path(scratch).name:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in unpacked.iterdir():
            entry.rename(dest / entry.name)  # same filesystem: the checked bytes, not a copy
    marker.write_text(digest + "\n")
    return FetchedBundle(replace(bundle, path=dest), digest, downloaded=True)


def _download(url: str, path: Path, on_progress: ProgressCallback | None) -> str:
    """Stream ``url`` into ``path``; the sha256 of its bytes."""
    digest = hashlib.sha256()
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise OSError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise OSError(f"could not download {url}: {error.reason}") from None
    except (OSError, ValueError) as error:  # a timeout; a malformed address
        raise OSError(f"could not download {url}: {error}") from None
    with response, path.open("wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None else None
        done = 0
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
    return digest.hexdigest()


def _unpack(archive: Path, folder: Path) -> Path:
    """The archive unpacked into ``folder``; the folder holding its manifest (``folder``, or
    the archive's one top folder)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # "data": no absolute paths, no links or paths out of the folder, no devices.
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"the bundle archive is not a safe .tar.gz: {error}") from error
    entries = list(folder.iterdir())
    if not (folder / MANIFEST_FILE).exists() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder
