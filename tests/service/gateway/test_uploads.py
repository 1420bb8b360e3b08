"""POST /jobs against a real server and Redis: a good upload is queued with its bytes intact;
each bad one is refused with its stable code and leaves nothing behind in Redis; an upload
over the limit is refused while it is still being sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from service.jobs import JobState
from service.queue import PROCESS_JOB
from tests.support.gateway import (
    ALICE,
    SECRETS,
    MakeGateway,
    RunningGateway,
    error_of,
    raw_request,
    upload,
    write_test_video,
)
from tests.support.huge_header import write_huge_header_video

KIB = 1024
SMALL_LIMIT_BYTES = 64 * KIB  # an upload limit that a test can pass quickly
STREAM_CHUNK_BYTES = 16 * KIB
ENDLESS_BYTES = 256 * 1024 * KIB  # "endless": far more than any socket buffer holds
BOUNDARY = "meshcast-test-boundary"
# Fields each under the limit of one field (16 KiB), together over that of the form (64 KiB).
MANY_FIELDS, MANY_FIELD_BYTES = 10, 10 * KIB


def test_a_good_upload_is_queued_with_its_bytes_intact(
    gateway: RunningGateway, video: bytes
) -> None:
    with gateway.client() as client:
        response = upload(client, video, data={"smooth": "true", "formats": ["json", "glb"]})
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    document = response.json()
    job_id = document["id"]
    assert response.headers["location"] == f"/jobs/{job_id}" == document["links"]["job"]
    assert document["state"] == "queued"
    assert document["options"] == {"smooth": True, "formats": ["json", "glb"],
                                   "min_track_length": None,
                                   "preview_keypoints": False}  # fmt: skip
    assert document["links"]["events"] == f"/jobs/{job_id}/events"
    assert document["links"]["downloads"] == []
    job = gateway.store.get(job_id)
    assert job is not None
    assert (job.state, job.owner, job.options.smooth) == (JobState.QUEUED, ALICE, True)
    # Stored chunk_bytes (256 here) at a time: many appends, the same bytes in the end.
    assert len(video) > 3 * gateway.settings.gateway.upload.chunk_bytes
    assert gateway.redis.get(gateway.store.keys.video(job_id)) == video
    # The task went to the workers' queue, by name, with the job's id.
    [message] = gateway.queued_tasks()
    task = json.loads(message)
    assert task["headers"]["task"] == PROCESS_JOB
    assert task["headers"]["argsrepr"] == repr([job_id])


def test_options_can_come_as_one_json_field(gateway: RunningGateway, video: bytes) -> None:
    options = {"formats": ["npz", "obj"], "min_track_length": 3}
    with gateway.client() as client:
        response = upload(client, video, data={"options": json.dumps(options)})
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    assert response.json()["options"] == {"smooth": False, "preview_keypoints": False, **options}


def make_truncated_mp4(video: bytes, tmp_path: Path) -> bytes:
    """An MP4 cut in half: its index (moov), which the muxer wrote last, is lost. (An MP4
    with its index first, "faststart", cut short passes the probe, which reads the first frame
    only: the worker's decoding fails it as ``truncated``.)"""
    whole = write_test_video(tmp_path / "noise.mp4", noise=True).read_bytes()
    return whole[: len(whole) // 2]


BAD_VIDEOS: dict[str, tuple[Callable[[bytes, Path], bytes], str]] = {
    "zero bytes": (lambda video, tmp_path: b"", "empty_upload"),
    "a truncated mp4": (make_truncated_mp4, "not_a_video"),
    "bytes that are not a video": (lambda video, tmp_path: b"not a video\n" * 500, "not_a_video"),
}


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(*BAD_VIDEOS[name], id=name)
        for name in ("zero bytes", "a truncated mp4", "bytes that are not a video")
    ],
)
def test_a_file_that_is_not_a_usable_video_is_refused_and_leaves_nothing(
    gateway: RunningGateway,
    video: bytes,
    tmp_path: Path,
    make: Callable[[bytes, Path], bytes],
    code: str,
) -> None:
    with gateway.client() as client:
        response = upload(client, make(video, tmp_path))
    assert error_of(response) == (HTTPStatus.UNPROCESSABLE_ENTITY, code)
    assert gateway.leftovers() == []
    assert gateway.queued_tasks() == []


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        # Honest stand-ins for a header claiming 10,000 × 10,000 pixels, hours or millions of
        # frames: the limits come down to the test video (96 × 64, 5 frames, 0.2 s) instead.
        # The check reads what probe() reads; a video that large would take the test's time
        # and memory to make, not the gateway's code another path.
        ({"max_width": 64, "max_height": 64}, "resolution_too_high"),
        ({"max_frames": 4}, "too_many_frames"),
        ({"max_duration_s": 0.1}, "video_too_long"),
        ({"max_pixel_frames": 96 * 64 * 5 - 1}, "too_many_pixels"),  # the decode budget
    ],
)
def test_a_video_past_the_limits_is_refused_and_leaves_nothing(
    make_gateway: MakeGateway, video: bytes, limits: dict[str, float], code: str
) -> None:
    gateway = make_gateway(upload=limits)
    with gateway.client() as client:
        response = upload(client, video)
    assert error_of(response) == (HTTPStatus.UNPROCESSABLE_ENTITY, code)
    assert gateway.leftovers() == []


def test_a_header_claiming_10000_by_10000_is_refused_before_decoding(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    video = write_huge_header_video(tmp_path / "huge.avi").read_bytes()
    with gateway.client() as client:  # the default limits: 3840 × 3840
        response = upload(client, video, filename="huge.avi", content_type="video/x-msvideo")
    assert error_of(response) == (HTTPStatus.UNPROCESSABLE_ENTITY, "resolution_too_high")
    assert "10000 × 10000" in response.json()["error"]["message"]
    assert gateway.leftovers() == []
    assert gateway.queued_tasks() == []


def test_a_portrait_limit_takes_a_landscape_video(make_gateway: MakeGateway, video: bytes) -> None:
    gateway = make_gateway(upload={"max_width": 64, "max_height": 96})  # the video: 96 × 64
    with gateway.client() as client:
        assert upload(client, video).status_code == HTTPStatus.ACCEPTED


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        pytest.param(
            lambda client, video: client.post(
                "/jobs", content=video, headers={"Content-Type": "video/mp4"}
            ),
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", id="body not a form",
        ),
        pytest.param(
            lambda client, video: upload(client, video, content_type="text/plain"),
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", id="video part text",
        ),
        pytest.param(
            lambda client, video: client.post("/jobs", data={"smooth": "true"}, files={}),
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", id="url-encoded form",
        ),
        pytest.param(
            lambda client, video: upload(client, video, data={"colour": "red"}),
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", id="an unknown field",
        ),
        pytest.param(
            lambda client, video: client.post(
                "/jobs",
                content=_form([("smooth", None, b"true")]),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            ),
            HTTPStatus.BAD_REQUEST, "missing_video", id="no video",
        ),
        pytest.param(
            lambda client, video: client.post(
                "/jobs", files={"file": ("clip.mp4", video, "video/mp4")}
            ),
            HTTPStatus.BAD_REQUEST, "missing_video", id="the video in a part named file",
        ),
        pytest.param(
            lambda client, video: upload(client, video, data={"formats": ["json", "fbx"]}),
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", id="an unknown format",
        ),
        pytest.param(
            lambda client, video: upload(client, video, data={"min_track_length": "0"}),
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", id="a track length of 0",
        ),
        pytest.param(
            lambda client, video: upload(client, video, data={"min_track_length": "9" * 12}),
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", id="a track length past 1000",
        ),
        pytest.param(
            lambda client, video: upload(client, video, data={"options": "{not json"}),
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", id="options not JSON",
        ),
        pytest.param(
            lambda client, video: client.post(
                "/jobs",
                content=_form([("video", "clip.mp4", video), ("smooth", None, b"true")]),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            ),
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", id="an option after the video",
        ),
        pytest.param(
            lambda client, video: client.post(
                "/jobs",
                content=_form([("video", "clip.mp4", video)])[:-8],
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            ),
            HTTPStatus.BAD_REQUEST, "invalid_multipart", id="a form cut short",
        ),
        pytest.param(
            lambda client, video: client.post(
                "/jobs",
                content=_form([("smooth", None, bytes(MANY_FIELD_BYTES))] * MANY_FIELDS),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            ),
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "upload_too_large", id="too many fields",
        ),
        pytest.param(
            lambda client, video: client.post(
                "/jobs",
                content=_form([("video", "a.mp4", video), ("video", "b.mp4", video)]),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            ),
            HTTPStatus.BAD_REQUEST, "invalid_multipart", id="two videos",
        ),
    ],
)  # fmt: skip
def test_a_malformed_request_is_refused_and_leaves_nothing(
    gateway: RunningGateway,
    video: bytes,
    send: Callable[[httpx.Client, bytes], httpx.Response],
    status: HTTPStatus,
    code: str,
) -> None:
    with gateway.client() as client:
        response = send(client, video)
    assert error_of(response) == (status, code)
    assert gateway.leftovers() == []
    assert gateway.queued_tasks() == []


def _form(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart body of ``(name, filename, content)`` parts, in that order."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}"
        if filename is not None:
            head += f'; filename="{filename}"\r\nContent-Type: video/mp4'
        body += head.encode() + b"\r\n\r\n" + content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _endless_video_form() -> Iterator[bytes]:
    """A form whose video part goes on (ENDLESS_BYTES), a chunk at a time."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; '
        f'filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    chunk = bytes(STREAM_CHUNK_BYTES)
    for _ in range(ENDLESS_BYTES // STREAM_CHUNK_BYTES):
        yield chunk


def _auth_and_form() -> dict[str, str]:
    return {
        "Authorization": f"Bearer {SECRETS[ALICE]}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }


def test_an_upload_without_a_length_is_refused_as_it_passes_the_limit(
    make_gateway: MakeGateway,
) -> None:
    gateway = make_gateway(upload={"max_bytes": SMALL_LIMIT_BYTES})
    response = raw_request(
        gateway.url, "POST", "/jobs", _auth_and_form(), _endless_video_form(), chunked=True
    )
    assert response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert json.loads(response.body)["error"]["code"] == "upload_too_large"
    # Answered while the client was still sending: the server stopped reading at the limit,
    # and closed the connection rather than read (and throw away) the rest.
    assert not response.body_complete
    assert response.sent_bytes < ENDLESS_BYTES
    assert response.headers["connection"] == "close"
    assert gateway.leftovers() == []


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    make_gateway: MakeGateway,
) -> None:
    gateway = make_gateway(upload={"max_bytes": SMALL_LIMIT_BYTES})
    headers = {
        **_auth_and_form(),
        "Content-Length": str(ENDLESS_BYTES),
        # The client waits for "100 Continue" before it sends the body; uvicorn sends it when
        # the app first reads the body. The refusal comes instead: no byte of it was sent.
        "Expect": "100-continue",
    }
    response = raw_request(gateway.url, "POST", "/jobs", headers)
    assert response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert json.loads(response.body)["error"]["code"] == "upload_too_large"
    assert response.headers["connection"] == "close"
    assert gateway.leftovers() == []


@pytest.mark.parametrize("length", ["9" * 5000, "\u00b2"], ids=["5000-digits", "superscript"])
def test_a_length_that_is_no_plain_number_is_answered_not_a_500(
    make_gateway: MakeGateway, length: str
) -> None:
    # int() refuses both (too many digits; a digit isdigit() takes but int() does not).
    gateway = make_gateway(upload={"max_bytes": SMALL_LIMIT_BYTES})
    headers = {**_auth_and_form(), "Content-Length": length, "Expect": "100-continue"}
    response = raw_request(gateway.url, "POST", "/jobs", headers)
    assert HTTPStatus.BAD_REQUEST <= response.status < HTTPStatus.INTERNAL_SERVER_ERROR
    assert gateway.leftovers() == []


def test_an_upload_just_over_the_limit_is_refused_with_httpx_too(
    make_gateway: MakeGateway, video: bytes
) -> None:
    gateway = make_gateway(upload={"max_bytes": len(video) - 1})
    with gateway.client() as client:
        response = upload(client, video)
    assert error_of(response) == (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "upload_too_large")
    assert gateway.leftovers() == []


def test_an_upload_of_exactly_the_limit_passes(make_gateway: MakeGateway, video: bytes) -> None:
    gateway = make_gateway(upload={"max_bytes": len(video)})
    with gateway.client() as client:
        assert upload(client, video).status_code == HTTPStatus.ACCEPTED


def test_other_containers_pass_by_probing(gateway: RunningGateway, tmp_path: Path) -> None:
    """An AVI (MPEG-4 Part 2) sent as application/octet-stream: the container is told by
    probing, not by the name or the declared type."""
    clip = write_test_video(tmp_path / "clip.avi", codec="mpeg4").read_bytes()
    with gateway.client() as client:
        response = upload(client, clip, filename="clip", content_type="application/octet-stream")
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
