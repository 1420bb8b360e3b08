"""Jobs made in the store as the gateway makes them: the video appended under a fresh id, then
the job created with it."""

from __future__ import annotations

from service.jobs import JobOptions, JobRecord, JobStore
from service.jobs.keys import new_job_id


def upload_job(
    store: JobStore,
    owner: str,
    video: bytes,
    options: JobOptions | None = None,
    chunk_bytes: int | None = None,
) -> JobRecord:
    """A queued job of ``owner`` whose upload is ``video``, appended ``chunk_bytes`` at a time
    (default: at once)."""
    upload = new_job_id()
    step = chunk_bytes or len(video)
    for start in range(0, len(video), step):
        store.append_video(upload, video[start : start + step], start)
    return store.create(owner, options, upload=upload)
