"""The whole service over real parts (issue #7): a uvicorn gateway on loopback, a real
``meshcast worker`` process and Redis, all under a key prefix of this module's own (the
broker's queue too: no other worker takes these jobs). Everything the test does goes through
the HTTP API with a Bearer key, as a user's client would: upload, follow the job (its
server-sent events, its document), download every file and open it, delete the job, after
which Redis holds nothing of it.

Two uploads: the committed street clip (a real camera's video, its walkers found among other
people) and a synthetic one (one rendered walker, ``training.synth``). One worker and one
gateway serve the module: a worker takes seconds to start (imports, the bundle's sessions).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import av
import bvhio
import cv2
import httpx
import numpy as np
import pytest
import trimesh
import yaml
from playwright.sync_api import FilePayload
from pygltflib import GLTF2

from meshcast.fault_drill import cut_video
from service.bundle import NUM_JOINTS, read_manifest
from service.gateway import create_app
from service.gateway.frame_meshes import load_frame_body
from service.jobs import JobState
from service.outputs import OUTPUT_FORMATS, read_result_npz
from service.outputs.meshes import MESH_FORMATS
from service.pipeline.video import probe
from tests.meshcast.test_run_accuracy import TEST_VIDEO
from tests.support.browser import browser_page
from tests.support.gateway import (
    ALICE,
    SECRETS,
    RunningGateway,
    error_of,
    gateway_settings,
    serve,
    sse_events,
    upload,
)
from tests.support.walkers import CLIP
from tests.support.worker_process import WorkerService, new_prefix, service_settings
from training.synth.generate import generate_dataset

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SETTINGS = REPO / "docs" / "service.example.yaml"
EXAMPLE_KEY = "example-key-change-me"  # the README's, whose digest the example settings hold
README_HOST = "http://127.0.0.1:8000"
README_CLIP_FRAMES = 16  # of the clip, for the README's session
JOB_TIMEOUT_S = 120.0
# Polls of GET /jobs/{id}: a few a second stays far below the key's rate limit (600 a minute)
# over a job of a minute.
POLL_S = 0.5
# Tracks as short as the worker's tests keep: a walker who crosses part of the clip counts.
MIN_TRACK = 8
MIN_STREET_PEOPLE = 2  # of the clip's walkers, HOG follows at least two (tests/meshcast)
MESH_FRAME_INDEX = 0  # of a track's frames, the one whose OBJ and PLY are downloaded
STAGES = {"detect", "encoder", "temporal", "body", "outputs"}
WEB_MAX_BYTES = 2 * 1024 * 1024  # the page's gateway: a small limit, to pass with a buffer
WEB_BACKGROUND = (242, 242, 242)  # the 3D view's background, BGR (style: 0xf2f2f2)
WEB_FRAME_WAIT_MS = 500  # for the page to draw the seeked frame
MAX_BACKGROUND_SHARE = 0.995  # some of the view is bodies
PREVIEW_READY_STATE = "document.getElementById('preview').readyState"
HAVE_CURRENT_DATA = 2  # a media element's readyState once a frame can be shown
WEB_WAIT_S = 30.0
SEEK_NEAR_THE_END = "const v = document.getElementById('preview'); v.currentTime = v.duration * 0.9"


@dataclass(frozen=True)
class Service:
    """The gateway (its URL, and the test's view of Redis) and the worker behind it."""

    gateway: RunningGateway
    workers: WorkerService
    body_vertices: int  # of the bundle's body: every mesh has as many


@pytest.fixture(scope="module")
def service(
    redis_url: str, service_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A worker and a gateway on one settings file's worth of settings (the workers' under a
    new prefix, plus the gateway's API keys); afterwards the worker is killed and every key
    under the prefix deleted."""
    bundle = service_bundle_dir
    prefix = new_prefix()
    settings: dict[str, Any] = service_settings(redis_url, prefix, bundle)
    keys = gateway_settings(redis_url, prefix).gateway.api_keys  # the test keys, hashed
    # and the example settings' key, whose digest the README's session relies on
    example_keys = yaml.safe_load(EXAMPLE_SETTINGS.read_text())["gateway"]["api_keys"]
    settings["gateway"] = {"api_keys": [key.model_dump() for key in keys] + example_keys}
    workers = WorkerService.create(tmp_path_factory.mktemp("service"), settings)
    try:
        workers.start_workers(1)
        body = load_frame_body(workers.settings.bundle)  # as `meshcast gateway` loads it
        with serve(create_app(workers.settings, body)) as url:
            gateway = RunningGateway(url, workers.settings, workers.store, workers.client, prefix)
            yield Service(gateway, workers, read_manifest(bundle).body.num_vertices)
    finally:
        workers.close()


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One rendered walker whom HOG finds in every frame (``TEST_VIDEO``, where its choice is
    explained)."""
    folder = tmp_path_factory.mktemp("synth")
    generate_dataset(folder, **TEST_VIDEO)
    return folder / TEST_VIDEO["split"] / "videos" / "video000.mp4"


def submit(client: httpx.Client, video: Path) -> str:
    """The video uploaded as a job (short tracks kept); its id."""
    response = upload(client, video.read_bytes(), data={"min_track_length": str(MIN_TRACK)})
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    job_id: str = response.json()["id"]
    assert response.headers["location"] == f"/jobs/{job_id}"
    return job_id


def poll_until_ended(service: Service, client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's document once it has ended, polled with GET /jobs/{id}."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        response = client.get(f"/jobs/{job_id}")
        assert response.status_code == HTTPStatus.OK, response.text
        document: dict[str, Any] = response.json()
        if JobState(document["state"]).terminal:
            return document
        time.sleep(POLL_S)
    raise AssertionError(f"job {job_id} did not end in {JOB_TIMEOUT_S} s\n{service.workers.logs()}")


def download_and_open_everything(
    service: Service, client: httpx.Client, document: dict[str, Any], video: Path
) -> int:
    """Download every file the succeeded job lists, and an OBJ and a PLY of one frame of each
    track; open each with a reader of its format. The number of tracks."""
    assert document["state"] == JobState.SUCCEEDED, (document, service.workers.logs())
    frames = probe(video).frame_count
    files = {}
    for download in document["links"]["downloads"]:
        response = client.get(download["url"])
        assert response.status_code == HTTPStatus.OK, (download, response.text)
        assert response.headers["content-type"].startswith(download["media_type"])
        assert len(response.content) == download["size"]
        files[download["name"]] = response.content

    result = json.loads(files["result.json"])
    tracks = result["tracks"]
    assert len(tracks) > 0
    with np.load(io.BytesIO(files["result.npz"]), allow_pickle=False) as npz:
        assert npz["track_ids"].tolist() == [track["track_id"] for track in tracks]
    npz_path = service.workers.folder / f"{document['id']}-result.npz"
    npz_path.write_bytes(files["result.npz"])
    assert read_result_npz(npz_path).frame_count == frames
    with av.open(io.BytesIO(files["preview.mp4"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames

    expected = {"result.json", "result.npz", "preview.mp4"}
    expected |= {f"tracks/track_{track['track_id']:03d}.{fmt}" for track in tracks
                 for fmt in ("glb", "bvh")}  # fmt: skip
    assert set(files) == expected
    meshes = document["links"]["meshes"]
    assert set(meshes) == set(MESH_FORMATS)
    for track in tracks:
        gltf = GLTF2.load_from_bytes(files[f"tracks/track_{track['track_id']:03d}.glb"])
        assert len(gltf.skins[0].joints) == NUM_JOINTS
        assert len(gltf.animations) == 1
        bvh_path = service.workers.folder / f"{document['id']}-{track['track_id']}.bvh"
        bvh_path.write_bytes(files[f"tracks/track_{track['track_id']:03d}.bvh"])
        bvh = bvhio.readAsBvh(str(bvh_path))
        assert len(bvh.Root.layout()) == NUM_JOINTS
        assert bvh.FrameCount == track["frame_ids"][-1] - track["frame_ids"][0] + 1
        frame = track["frame_ids"][MESH_FRAME_INDEX]
        for fmt, template in meshes.items():
            url = template.format(track_id=track["track_id"], frame_id=frame)
            response = client.get(url)
            assert response.status_code == HTTPStatus.OK, (url, response.text)
            mesh = trimesh.load(io.BytesIO(response.content), file_type=fmt, process=False)
            assert mesh.vertices.shape == (service.body_vertices, 3)
            assert np.isfinite(mesh.vertices).all()
    return len(tracks)


def delete_and_check_nothing_is_left(service: Service, client: httpx.Client, job_id: str) -> None:
    gateway = service.gateway
    assert gateway.job_keys(job_id)
    assert gateway.store.memory_usage(job_id) > 0
    assert client.delete(f"/jobs/{job_id}").status_code == HTTPStatus.NO_CONTENT
    assert gateway.job_keys(job_id) == []
    assert gateway.store.memory_usage(job_id) == 0
    assert job_id not in gateway.store.running_jobs()
    assert error_of(client.get(f"/jobs/{job_id}")) == (HTTPStatus.NOT_FOUND, "job_not_found")


def test_the_gateway_is_ready_with_a_worker_alive(service: Service) -> None:
    with service.gateway.client(None) as client:
        response = client.get("/readyz")
    assert response.status_code == HTTPStatus.OK, response.text
    assert response.json() == {
        "status": "ready",
        "workers": [worker.name for worker in service.workers.workers],
    }


def test_the_street_clip_goes_through_the_api(service: Service) -> None:
    """Followed by its events: the first says it is queued, progress comes for every stage,
    the stream ends with its success."""
    with service.gateway.client() as client:
        job_id = submit(client, CLIP)
        with client.stream("GET", f"/jobs/{job_id}/events") as stream:
            assert stream.status_code == HTTPStatus.OK
            heard = list(sse_events(stream))
        (first, opening), (last, ending) = heard[0], heard[-1]
        assert first == last == "state"
        assert opening["state"] in {JobState.QUEUED, JobState.RUNNING}  # where it stood
        assert ending["state"] == JobState.SUCCEEDED  # and then the stream ended
        progress = [data for name, data in heard if name == "progress"]
        assert {data["stage"] for data in progress} >= STAGES
        assert all(0 <= data["done"] <= data["total"] for data in progress)
        document = poll_until_ended(service, client, job_id)
        assert document["attempts"] == 1
        assert download_and_open_everything(service, client, document, CLIP) >= MIN_STREET_PEOPLE
        delete_and_check_nothing_is_left(service, client, job_id)


def test_a_synthetic_walker_goes_through_the_api(service: Service, synthetic_video: Path) -> None:
    """Followed by polling its document alone."""
    with service.gateway.client() as client:
        job_id = submit(client, synthetic_video)
        document = poll_until_ended(service, client, job_id)
        assert download_and_open_everything(service, client, document, synthetic_video) >= 1
        delete_and_check_nothing_is_left(service, client, job_id)


def readme_service_session() -> tuple[str, list[str]]:
    """The README's session with the service ("Use the service"): its KEY line and its curl
    commands, comments cut."""
    section = (REPO / "README.md").read_text().split("## Use the service\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```sh\n")[1:]]
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    key_line = next(line for line in lines if line.startswith("KEY="))
    return key_line, [line for line in lines if line.startswith("curl ")]


def test_the_readmes_curl_session_works(service: Service, tmp_path: Path) -> None:
    """Upload, look at the job, download a person's GLB: the README's own lines, run by bash
    against this gateway, with the example settings' key. The upload runs in a folder whose
    meshcast/assets/vtest_clip.mp4 is the clip's first 16 frames (the suite's time)."""
    key_line, (upload_line, job_line, track_line) = readme_service_session()
    assert EXAMPLE_KEY in key_line
    upload_from = tmp_path / "upload"
    (upload_from / "meshcast" / "assets").mkdir(parents=True)
    cut_video(CLIP, README_CLIP_FRAMES, upload_from / "meshcast" / "assets" / CLIP.name)

    def bash(command: str, cwd: Path) -> str:
        ran = subprocess.run(
            ["bash", "-c", f"{key_line}\n{command.replace(README_HOST, service.gateway.url)}"],
            capture_output=True, text=True, cwd=cwd, timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, (command, ran.stderr)
        return ran.stdout

    job_id = json.loads(bash(upload_line, upload_from))["id"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    document = json.loads(bash(job_line.replace("ID", job_id), REPO))
    while not JobState(document["state"]).terminal and time.monotonic() < deadline:
        time.sleep(POLL_S)
        document = json.loads(bash(job_line.replace("ID", job_id), REPO))
    assert document["state"] == JobState.SUCCEEDED, (document, service.workers.logs())
    glb_name = next(item["name"] for item in document["links"]["downloads"]
                    if item["name"].endswith(".glb"))  # fmt: skip
    track = int(glb_name.removeprefix("tracks/track_").removesuffix(".glb"))
    bash(track_line.replace("ID", job_id).replace("TRACK", str(track)), tmp_path)
    gltf = GLTF2.load_from_bytes((tmp_path / f"{track}.glb").read_bytes())
    assert len(gltf.animations) == 1


def test_the_python_client_runs_a_job(
    service: Service, synthetic_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ran = subprocess.run(
        [sys.executable, str(REPO / "docs" / "client.py"), str(synthetic_video),
         "--url", service.gateway.url, "--key", EXAMPLE_KEY, "--out", str(out)],
        capture_output=True, text=True, timeout=JOB_TIMEOUT_S + 60,
    )  # fmt: skip
    assert ran.returncode == 0, (ran.stdout, ran.stderr, service.workers.logs())
    assert "succeeded" in ran.stdout
    saved = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    assert {"result.json", "result.npz", "preview.mp4"} <= saved
    assert any(name.endswith(".glb") for name in saved)
    assert any(name.endswith(".bvh") for name in saved)
    refused = subprocess.run(
        [sys.executable, str(REPO / "docs" / "client.py"), str(synthetic_video),
         "--url", service.gateway.url, "--key", "not-a-key", "--out", str(tmp_path / "no")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("POST /jobs: 401 ")  # the API's code and sentence


def background_share(png: bytes) -> float:
    """The share of a screenshot's pixels that are the 3D view's background."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return float(np.mean(np.all(np.abs(image.astype(int) - WEB_BACKGROUND) <= 2, axis=2)))


def test_the_web_page_uploads_follows_and_shows_the_bodies(
    service: Service, tmp_path: Path
) -> None:
    """In Debian's chromium: a wrong key shows the API's sentence, an oversize file is refused
    before a byte is sent, and the clip's first 16 frames are uploaded, followed to the end and
    shown: the preview beside the bodies, which move as the video plays. The page's gateway
    takes videos of at most 2 MiB, beside the module's own."""
    clip = cut_video(CLIP, README_CLIP_FRAMES, tmp_path / "clip.mp4")
    gateway = service.gateway.settings.gateway
    upload_limits = gateway.upload.model_copy(update={"max_bytes": WEB_MAX_BYTES})
    small = service.gateway.settings.model_copy(
        update={"gateway": gateway.model_copy(update={"upload": upload_limits})}
    )
    body = load_frame_body(small.bundle)
    with serve(create_app(small, body)) as url, browser_page() as page:
        failures: list[str] = []
        page.on("pageerror", lambda error: failures.append(str(error)))
        posts: list[str] = []
        page.on("request", lambda request: posts.append(request.url) if request.method == "POST"
                else None)  # fmt: skip
        answer = page.goto(f"{url}/")
        assert answer is not None
        assert answer.status == HTTPStatus.OK
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")

        page.fill("#key", "not-a-key")
        page.dispatch_event("#key", "change")
        wrong = httpx.get(f"{url}/jobs", headers={"Authorization": "Bearer not-a-key"})
        page.wait_for_selector("#message:not([hidden])")
        assert page.text_content("#message") == wrong.json()["error"]["message"]

        page.fill("#key", SECRETS[ALICE])
        page.dispatch_event("#key", "change")
        oversize = FilePayload(
            name="big.mp4", mimeType="video/mp4", buffer=bytes(WEB_MAX_BYTES + 1)
        )
        page.set_input_files("#file", files=[oversize])
        assert "at most" in (page.text_content("#message") or "")
        assert posts == []  # refused here: nothing was sent
        # The job's options: no file to make is refused here too; then smoothed, keypoints
        # drawn, every file but BVH.
        formats = [f"#format-{name}" for name in OUTPUT_FORMATS]
        for box in formats:
            page.uncheck(box)
        page.set_input_files("#file", str(clip))
        assert page.text_content("#message") == "choose at least one file to make"
        assert posts == []
        for box in formats:
            page.check(box)
        page.uncheck("#format-bvh")
        page.check("#smooth")
        page.check("#preview-keypoints")

        page.set_input_files("#file", str(clip))
        page.locator("#person option").nth(1).wait_for(state="attached",
                                                       timeout=JOB_TIMEOUT_S * 1000)  # fmt: skip
        page.locator("#preview").wait_for(state="visible")
        deadline = time.monotonic() + WEB_WAIT_S  # (wait_for_function would need unsafe-eval)
        while page.evaluate(PREVIEW_READY_STATE) < HAVE_CURRENT_DATA:
            assert time.monotonic() < deadline, "the preview did not load"
            time.sleep(POLL_S)
        assert page.locator("#message").is_hidden()
        scene = page.locator("#scene")
        first = scene.screenshot()
        page.evaluate(SEEK_NEAR_THE_END)
        page.wait_for_timeout(WEB_FRAME_WAIT_MS)
        later = scene.screenshot()
        job_id = page.text_content("#job-id") or ""
        assert job_id in (page.text_content("#job-rows") or "")
        names = page.locator("#downloads a").all_text_contents()
        assert any("preview.mp4" in name for name in names)
        assert any(".glb" in name for name in names)
        assert not any(".bvh" in name for name in names)
        job = httpx.get(
            f"{url}/jobs/{job_id}", headers={"Authorization": f"Bearer {SECRETS[ALICE]}"}
        )
        options = job.json()["options"]
        assert options["smooth"]
        assert options["preview_keypoints"]
        assert options["formats"] == [name for name in OUTPUT_FORMATS if name != "bvh"]
        assert options["min_track_length"] is None
        # One person's mesh at the video's frame, posed by the gateway on download.
        page.select_option("#person", index=1)
        with page.expect_download() as saved:
            page.locator("#downloads a", has_text="OBJ of the person picked").click()
        obj = Path(saved.value.path()).read_text()
        assert sum(line.startswith("v ") for line in obj.splitlines()) == service.body_vertices
        assert failures == []
    # Bodies cover part of the view, and they moved between the two times.
    assert background_share(first) < MAX_BACKGROUND_SHARE
    assert background_share(later) < MAX_BACKGROUND_SHARE
    assert first != later
