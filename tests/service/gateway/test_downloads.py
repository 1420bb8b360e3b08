"""A finished job's files, stored as a worker stores them (start, then finish with the files
that write_outputs made from a small synthetic result, result.npz without posed vertices),
downloaded in every format: each opens, and a mesh posed from result.npz's parameters on
request is byte for byte the file write_outputs writes for that person and frame (with the
same body: tests/meshcast/test_run.py compares the bundle's with `meshcast run`'s files)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib
import pytest
import trimesh

import service.jobs.store as store_module
from service.gateway.frame_meshes import FrameBody
from service.jobs import JobOptions
from service.outputs import ResultDocument, read_result_npz, write_outputs
from service.outputs.meshes import MeshFormat, mesh_path, write_meshes
from service.outputs.result_files import VERTICES_KEY, track_prefix
from service.pipeline.result import VideoResult
from tests.support.gateway import MakeGateway, RunningGateway, error_of, upload
from tests.support.video_results import (
    FOCAL_LENGTH,
    make_video_result,
    torch_mesh_vertices,
    write_grey_video,
)
from training.body import load_body_model

WORKER = "test-host:1:w"


@dataclass(frozen=True)
class Outputs:
    folder: Path  # write_outputs's folder, as `meshcast run` writes it: meshes included
    stored: dict[str, Path]  # what the worker stores: the meshes stand for result.npz
    camera_meshes: Path  # the meshes again, in the camera frame
    result: VideoResult


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    body = load_body_model("standin")
    result = make_video_result(body)
    folder = tmp_path_factory.mktemp("outputs")
    video = write_grey_video(folder / "input.avi")
    pose = torch_mesh_vertices(body)
    write_outputs(result, video, folder / "out", pose, focal_length=FOCAL_LENGTH)
    stored = folder / "stored"
    written = write_outputs(result, video, stored, pose, focal_length=FOCAL_LENGTH,
                            formats=JobOptions().stored_formats, npz_vertices=False)  # fmt: skip
    files = {path.relative_to(stored).as_posix(): path for paths in written.values()
             for path in paths}  # fmt: skip
    camera = folder / "camera_meshes"
    write_meshes(result, camera, pose, camera_frame=True)
    return Outputs(folder / "out", files, camera, result)


def finished_job(
    gateway: RunningGateway, video: bytes, outputs: Outputs, data: dict[str, object] | None = None
) -> str:
    """Upload, then store the results as a worker does."""
    with gateway.client() as client:
        response = upload(client, video, data=data)
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    job_id: str = response.json()["id"]
    assert gateway.store.start(job_id, WORKER) is not None
    assert gateway.store.finish(job_id, WORKER, outputs.stored, timings={"detect": 0.5})
    return job_id


@pytest.fixture
def job_id(gateway: RunningGateway, video: bytes, outputs: Outputs) -> str:
    return finished_job(gateway, video, outputs)


def test_the_job_document_links_every_download(
    gateway: RunningGateway, job_id: str, outputs: Outputs
) -> None:
    with gateway.client() as client:
        document = client.get(f"/jobs/{job_id}").json()
    assert document["state"] == "succeeded"
    links = document["links"]
    assert {item["name"]: item["url"] for item in links["downloads"]} == {
        "result.json": f"/jobs/{job_id}/result.json",
        "result.npz": f"/jobs/{job_id}/result.npz",
        "preview.mp4": f"/jobs/{job_id}/preview.mp4",
        "tracks/track_001.glb": f"/jobs/{job_id}/tracks/1.glb",
        "tracks/track_002.glb": f"/jobs/{job_id}/tracks/2.glb",
        "tracks/track_001.bvh": f"/jobs/{job_id}/tracks/1.bvh",
        "tracks/track_002.bvh": f"/jobs/{job_id}/tracks/2.bvh",
    }
    for item in links["downloads"]:
        assert item["size"] == outputs.stored[item["name"]].stat().st_size
    assert links["meshes"] == {
        fmt: f"/jobs/{job_id}/tracks/{{track_id}}/frames/{{frame_id}}.{fmt}"
        for fmt in ("obj", "ply")
    }


def test_every_format_downloads_and_opens(
    gateway: RunningGateway, job_id: str, outputs: Outputs, tmp_path: Path
) -> None:
    with gateway.client() as client:
        result_json = client.get(f"/jobs/{job_id}/result.json")
        result_npz = client.get(f"/jobs/{job_id}/result.npz")
        glb = client.get(f"/jobs/{job_id}/tracks/2.glb")
        bvh = client.get(f"/jobs/{job_id}/tracks/2.bvh")
        preview = client.get(f"/jobs/{job_id}/preview.mp4")
        obj = client.get(f"/jobs/{job_id}/tracks/1/frames/3.obj")
        ply = client.get(f"/jobs/{job_id}/tracks/2/frames/4.ply")
    for response in (result_json, result_npz, glb, bvh, preview, obj, ply):
        assert response.status_code == HTTPStatus.OK, response.text
    assert result_json.headers["content-type"] == "application/json"
    document = ResultDocument.model_validate(json.loads(result_json.content))
    assert [track.track_id for track in document.tracks] == [1, 2]
    npz_path = tmp_path / "result.npz"
    npz_path.write_bytes(result_npz.content)
    assert read_result_npz(npz_path).frame_count == outputs.result.frame_count
    with np.load(io.BytesIO(result_npz.content)) as npz:  # parameters, not posed vertices
        assert npz["track_001/rotmat"].shape[0] == len(outputs.result.tracks[0])
        assert track_prefix(1) + VERTICES_KEY not in npz.files
    assert glb.headers["content-type"] == "model/gltf-binary"
    gltf = pygltflib.GLTF2.load_from_bytes(glb.content)
    assert len(gltf.animations) == 1
    assert bvh.headers["content-type"].startswith("text/plain")
    assert bvh.content == outputs.stored["tracks/track_002.bvh"].read_bytes()
    assert bvh.content.startswith(b"HIERARCHY\nROOT pelvis\n")
    assert preview.headers["content-type"] == "video/mp4"
    assert preview.content == outputs.stored["preview.mp4"].read_bytes()
    vertex_count = len(outputs.result.body.skinning_weights)
    for response, fmt in ((obj, "obj"), (ply, "ply")):
        mesh = trimesh.load(io.BytesIO(response.content), file_type=fmt, process=False)
        assert mesh.vertices.shape == (vertex_count, 3)
        assert mesh.faces.shape == outputs.result.body.faces.shape


@pytest.mark.parametrize("fmt", ["obj", "ply"])
@pytest.mark.parametrize("space", ["body", "camera"])
def test_a_mesh_posed_on_request_is_the_file_write_outputs_writes(
    gateway: RunningGateway, job_id: str, outputs: Outputs, fmt: MeshFormat, space: str
) -> None:
    folder = outputs.folder / "meshes" if space == "body" else outputs.camera_meshes
    with gateway.client() as client:
        for track in outputs.result.tracks:
            for frame_id in track.frame_ids.tolist():
                response = client.get(
                    f"/jobs/{job_id}/tracks/{track.track_id}/frames/{frame_id}.{fmt}",
                    params={"space": space},
                )
                expected = (folder / mesh_path(track.track_id, frame_id, fmt)).read_bytes()
                assert response.content == expected, (track.track_id, frame_id)


def test_byte_ranges_of_a_stored_file(
    gateway: RunningGateway, job_id: str, outputs: Outputs
) -> None:
    whole = outputs.stored["preview.mp4"].read_bytes()
    size = len(whole)
    url = f"/jobs/{job_id}/preview.mp4"
    with gateway.client() as client:
        middle = client.get(url, headers={"Range": "bytes=10-99"})
        tail = client.get(url, headers={"Range": "bytes=-100"})
        open_ended = client.get(url, headers={"Range": f"bytes={size - 5}-"})
        several = client.get(url, headers={"Range": "bytes=0-1,5-6"})
        past_the_end = client.get(url, headers={"Range": f"bytes={size}-"})
    assert (middle.status_code, middle.content) == (HTTPStatus.PARTIAL_CONTENT, whole[10:100])
    assert middle.headers["content-range"] == f"bytes 10-99/{size}"
    assert tail.content == whole[-100:]
    assert open_ended.content == whole[-5:]
    assert (several.status_code, several.content) == (HTTPStatus.OK, whole)  # served whole
    assert several.headers["accept-ranges"] == "bytes"
    assert error_of(past_the_end) == (HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                      "range_not_satisfiable")  # fmt: skip
    assert past_the_end.headers["content-range"] == f"bytes */{size}"


def test_head_answers_what_get_would_without_the_body(
    gateway: RunningGateway, job_id: str, outputs: Outputs
) -> None:
    size = outputs.stored["preview.mp4"].stat().st_size
    requests = [
        (f"/jobs/{job_id}", {}),
        (f"/jobs/{job_id}/preview.mp4", {}),
        (f"/jobs/{job_id}/preview.mp4", {"Range": "bytes=10-99"}),
        (f"/jobs/{job_id}/preview.mp4", {"Range": f"bytes={size}-"}),  # 416
        (f"/jobs/{job_id}/result.npz", {}),
        (f"/jobs/{job_id}/tracks/1/frames/0.obj", {}),
        (f"/jobs/{job_id}/events", {}),
        (f"/jobs/{job_id}/nothing.txt", {}),  # 404
        ("/healthz", {}),
    ]
    compared = ("content-length", "content-type", "content-range", "accept-ranges")
    with gateway.client() as client:
        for url, headers in requests:
            got = client.get(url, headers=headers)
            head = client.head(url, headers=headers)
            assert head.status_code == got.status_code, url
            assert head.content == b"", url
            for name in compared:
                assert head.headers.get(name) == got.headers.get(name), (url, name)
    with gateway.client(None) as anonymous:  # an error keeps its own headers too
        refused = anonymous.head(f"/jobs/{job_id}")
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert refused.headers["www-authenticate"] == "Bearer"


def test_head_of_a_stored_file_reads_none_of_it(
    gateway: RunningGateway, job_id: str, outputs: Outputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HEAD answers a stored file's size without a GETRANGE of it (the gateway runs in this
    process: its reads are counted where the store makes them)."""
    size = outputs.stored["preview.mp4"].stat().st_size
    chunks_read: list[int] = []
    read_range = store_module._read_range

    def counted(*args: Any) -> Iterator[bytes]:
        for chunk in read_range(*args):
            chunks_read.append(len(chunk))
            yield chunk

    monkeypatch.setattr(store_module, "_read_range", counted)
    url = f"/jobs/{job_id}/preview.mp4"
    with gateway.client() as client:
        whole = client.head(url)
        part = client.head(url, headers={"Range": "bytes=10-99"})
        assert chunks_read == []
        assert (whole.status_code, whole.content) == (HTTPStatus.OK, b"")
        assert whole.headers["content-length"] == str(size)
        assert (part.status_code, part.content) == (HTTPStatus.PARTIAL_CONTENT, b"")
        assert part.headers["content-length"] == "90"
        assert len(client.get(url).content) == size
    assert sum(chunks_read) == size  # the count sees a GET's reads


def test_a_range_of_numbers_of_any_length_is_read(
    gateway: RunningGateway, job_id: str, outputs: Outputs
) -> None:
    # Python parses no int of more than 4300 digits: such a range once answered 500.
    whole = outputs.stored["preview.mp4"].read_bytes()
    url = f"/jobs/{job_id}/preview.mp4"
    huge = "9" * 5000
    with gateway.client() as client:
        to_the_end = client.get(url, headers={"Range": f"bytes=10-{huge}"})
        past_the_end = client.get(url, headers={"Range": f"bytes={huge}-"})
        whole_as_suffix = client.get(url, headers={"Range": f"bytes=-{huge}"})
        zeros = client.get(url, headers={"Range": f"bytes={'0' * 5000}10-19"})
    assert (to_the_end.status_code, to_the_end.content) == (HTTPStatus.PARTIAL_CONTENT, whole[10:])
    assert error_of(past_the_end) == (HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                      "range_not_satisfiable")  # fmt: skip
    assert whole_as_suffix.content == whole
    assert zeros.content == whole[10:20]


def test_a_range_across_the_stores_chunks(
    gateway: RunningGateway, job_id: str, outputs: Outputs
) -> None:
    whole = outputs.stored["result.npz"].read_bytes()
    chunk = gateway.settings.store.chunk_bytes
    assert len(whole) > 3 * chunk
    start, stop = chunk - 7, 3 * chunk + 11  # from the end of the first to the fourth
    with gateway.client() as client:
        response = client.get(
            f"/jobs/{job_id}/result.npz", headers={"Range": f"bytes={start}-{stop - 1}"}
        )
        complete = client.get(f"/jobs/{job_id}/result.npz")
    assert response.content == whole[start:stop]
    assert response.headers["content-length"] == str(stop - start)
    assert complete.content == whole


def test_what_a_finished_job_does_not_have_is_404(gateway: RunningGateway, job_id: str) -> None:
    with gateway.client() as client:
        answers = {
            "an unknown track's GLB": client.get(f"/jobs/{job_id}/tracks/7.glb"),
            "an unknown track's mesh": client.get(f"/jobs/{job_id}/tracks/7/frames/0.obj"),
            "a frame the track was not in": client.get(f"/jobs/{job_id}/tracks/2/frames/0.obj"),
        }
    assert {name: error_of(answer) for name, answer in answers.items()} == {
        "an unknown track's GLB": (HTTPStatus.NOT_FOUND, "track_not_found"),
        "an unknown track's mesh": (HTTPStatus.NOT_FOUND, "track_not_found"),
        "a frame the track was not in": (HTTPStatus.NOT_FOUND, "frame_not_found"),
    }


def test_formats_the_job_was_not_asked_for_are_404(
    gateway: RunningGateway, video: bytes, outputs: Outputs
) -> None:
    job_id = finished_job(gateway, video, outputs, data={"formats": ["json", "npz"]})
    with gateway.client() as client:
        document = client.get(f"/jobs/{job_id}").json()
        mesh = client.get(f"/jobs/{job_id}/tracks/1/frames/0.ply")
    assert document["links"]["meshes"] == {}
    assert error_of(mesh) == (HTTPStatus.NOT_FOUND, "file_not_found")


def test_a_job_without_results_has_no_files(make_gateway: MakeGateway, video: bytes) -> None:
    gateway = make_gateway()
    with gateway.client() as client:
        job_id = upload(client, video).json()["id"]
        queued = client.get(f"/jobs/{job_id}/result.json")
        gateway.store.start(job_id, WORKER)
        running = client.get(f"/jobs/{job_id}/tracks/1/frames/0.obj")
        gateway.store.fail(job_id, "no_people", "nobody was found", worker=WORKER)
        failed = client.get(f"/jobs/{job_id}/preview.mp4")
    assert error_of(queued) == (HTTPStatus.CONFLICT, "job_not_finished")
    assert error_of(running) == (HTTPStatus.CONFLICT, "job_not_finished")
    assert error_of(failed) == (HTTPStatus.CONFLICT, "job_without_results")
    assert "nobody was found" in failed.json()["error"]["message"]


def test_a_result_of_another_body_is_not_posed_with_the_gateways(
    make_gateway: MakeGateway, video: bytes, outputs: Outputs, frame_body: FrameBody
) -> None:
    """A gateway serving another bundle than the job's: its meshes would be another body's, so
    the download fails (and the log says why) rather than serve them."""
    gateway = make_gateway(body=dataclasses.replace(frame_body, name="another body"))
    job_id = finished_job(gateway, video, outputs)
    with gateway.client() as client:
        mesh = client.get(f"/jobs/{job_id}/tracks/1/frames/0.ply")
    assert error_of(mesh) == (HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error")
