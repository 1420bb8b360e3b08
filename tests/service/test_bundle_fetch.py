"""``meshcast fetch-bundle``: a bundle archive over a real HTTP server on loopback, checked
before it replaces anything; a second fetch of the same archive downloads nothing; bad
archives are refused and leave the folder as it was."""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from service.bundle import MANIFEST_FILE, BundleChecksumError, file_sha256
from service.bundle_fetch import MARKER_FILE, fetch_bundle

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]


class Server:
    """A folder served over HTTP on loopback, counting the requests it answered."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests = 0
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests' output is theirs."""

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def bundle(service_bundle_dir: Path) -> Path:
    return service_bundle_dir


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = tmp_path / "served"
    served.mkdir()
    running = Server(served)
    yield running
    running.close()


def archive(bundle: Path, path: Path, top: str = ".") -> Path:
    """``tar -czf path -C bundle .`` (or with the files under one top folder), stored without
    compression: gzip would spend seconds on the bundle's 140 MB of weights."""
    with tarfile.open(path, "w:gz", compresslevel=0) as tar:
        tar.add(bundle, arcname=top)
    return path


def test_an_archive_is_fetched_checked_and_not_fetched_twice(
    bundle: Path, server: Server, tmp_path: Path
) -> None:
    served = archive(bundle, server.folder / "bundle.tar.gz")
    digest = file_sha256(served)
    dest = tmp_path / "bundles"
    seen: list[tuple[int, int | None]] = []
    fetched = fetch_bundle(
        server.url("bundle.tar.gz"), dest, digest, lambda done, total: seen.append((done, total))
    )
    assert (fetched.downloaded, fetched.sha256) == (True, digest)
    assert seen[-1] == (served.stat().st_size, served.stat().st_size)
    for name in (MANIFEST_FILE, *fetched.bundle.manifest.files):
        assert file_sha256(dest / name) == file_sha256(bundle / name)
    assert (dest / MARKER_FILE).read_text().strip() == digest
    assert {entry.name for entry in dest.iterdir()} == {
        MARKER_FILE, *(entry.name for entry in bundle.iterdir())
    }  # fmt: skip

    again = fetch_bundle(server.url("bundle.tar.gz"), dest, digest.upper())
    assert not again.downloaded
    assert server.requests == 1


def test_an_archive_with_one_top_folder_is_accepted_and_replaces_the_old_files(
    bundle: Path, server: Server, tmp_path: Path
) -> None:
    archive(bundle, server.folder / "bundle.tar.gz", top="default")
    dest = tmp_path / "bundles"
    dest.mkdir()
    (dest / "stale.onnx").write_bytes(b"an older bundle's file")
    fetched = fetch_bundle(server.url("bundle.tar.gz"), dest)
    assert fetched.downloaded
    assert (dest / MANIFEST_FILE).is_file()
    assert not (dest / "default").exists()
    assert not (dest / "stale.onnx").exists()


def test_bad_archives_are_refused_and_leave_the_folder_as_it_was(
    bundle: Path, server: Server, tmp_path: Path
) -> None:
    good = archive(bundle, server.folder / "good.tar.gz")
    dest = tmp_path / "bundles"
    fetch_bundle(server.url("good.tar.gz"), dest)
    before = {path.name: path.read_bytes() for path in dest.iterdir()}

    with pytest.raises(ValueError, match="sha256 is"):
        fetch_bundle(server.url("good.tar.gz"), dest, "0" * 64)

    (server.folder / "notes.tar.gz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"not a safe \.tar\.gz"):
        fetch_bundle(server.url("notes.tar.gz"), dest)

    (server.folder / "cut.tar.gz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"not a safe \.tar\.gz"):
        fetch_bundle(server.url("cut.tar.gz"), dest)

    escaping = server.folder / "escaping.tar.gz"
    with tarfile.open(escaping, "w:gz") as tar:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"evil"))
    with pytest.raises(ValueError, match="outside"):
        fetch_bundle(server.url("escaping.tar.gz"), dest)
    assert not (tmp_path / "escaped.txt").exists()

    changed = tmp_path / "changed"
    changed.mkdir()
    for path in bundle.iterdir():
        (changed / path.name).write_bytes(path.read_bytes())
    (changed / "faces.npy").write_bytes(b"corrupted")
    archive(changed, server.folder / "changed.tar.gz")
    with pytest.raises(BundleChecksumError, match=r"faces\.npy"):
        fetch_bundle(server.url("changed.tar.gz"), dest)

    with pytest.raises(ValueError, match="not 'ftp'"):
        fetch_bundle("ftp://example.org/bundle.tar.gz", dest)
    assert {path.name: path.read_bytes() for path in dest.iterdir()} == before


def test_the_command_fetches_a_file_url_and_says_a_missing_one_in_one_line(
    bundle: Path, server: Server, tmp_path: Path
) -> None:
    served = archive(bundle, tmp_path / "bundle.tar.gz")

    def fetch(url: str, dest: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshcast", "fetch-bundle", url, str(tmp_path / dest),
             "--sha256", file_sha256(served)],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip

    done = fetch(served.as_uri(), "dest")
    assert done.returncode == 0, done.stderr
    assert f"archive sha256 {file_sha256(served)} (downloaded)" in done.stdout
    missing = fetch(server.url("absent.tar.gz"), "other")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "404" in missing.stderr


def test_a_failed_fetch_names_the_url_and_leaves_no_folder_it_made(
    server: Server, tmp_path: Path
) -> None:
    dest = tmp_path / "new" / "bundle"
    absent = server.url("absent.tar.gz")
    with pytest.raises(OSError, match=f"could not download {absent}: HTTP 404"):
        fetch_bundle(absent, dest)
    assert not (tmp_path / "new").exists()  # the folders the fetch made are gone again

    (server.folder / "notes.tar.gz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"not a safe \.tar\.gz"):
        fetch_bundle(server.url("notes.tar.gz"), dest)
    assert not (tmp_path / "new").exists()

    requests = server.requests
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        fetch_bundle(server.url("notes.tar.gz"), dest, "xyz")
    assert server.requests == requests  # refused before any download
    assert not (tmp_path / "new").exists()
