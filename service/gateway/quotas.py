"""What one API key may hold (:class:`~service.settings.Quotas`), checked as an upload begins
and again once its video is whole: its jobs queued or running, the bytes its stored jobs take,
and the worker time its jobs took this hour. Each refusal is a 429 with its own code and a
``Retry-After``.

The counts are read, not reserved: uploads of one key in progress at once (at most
``upload.max_concurrent_per_key``) may each pass the same last place, so a key can go past
``max_active_jobs`` or ``max_stored_bytes`` by that many uploads, never more.
"""

from __future__ import annotations

import time

from service.gateway.errors import ApiError, ErrorCode
from service.jobs import JobStore
from service.jobs.store import HOUR_S
from service.settings import Quotas

JOBS_RETRY_AFTER_S = 60  # a job takes about this long to end
STORAGE_RETRY_AFTER_S = 3600  # stored jobs go when deleted, or a day after their last write


def check_quotas(store: JobStore, owner: str, quotas: Quotas, incoming_bytes: int = 0) -> None:
    """Refuse a new job of ``owner`` that would pass one of ``quotas``, with ``incoming_bytes``
    of its own video on top of what is stored.

    Raises:
        ApiError: ``too_many_jobs``, ``storage_quota_exceeded``,
            ``worker_time_quota_exceeded``.
    """
    now = time.time()
    usage = store.owner_usage(owner, now)
    if usage.active_jobs >= quotas.max_active_jobs:
        raise ApiError(
            ErrorCode.TOO_MANY_JOBS,
            f"this API key has {usage.active_jobs} jobs queued or running, the most it may: "
            "wait for one to end, or cancel one (DELETE /jobs/<id>)",
            {"Retry-After": str(JOBS_RETRY_AFTER_S)},
        )
    if usage.stored_bytes + incoming_bytes > quotas.max_stored_bytes:
        raise ApiError(
            ErrorCode.STORAGE_QUOTA_EXCEEDED,
            f"this API key's jobs hold {usage.stored_bytes} bytes; with this video they would "
            f"pass {quotas.max_stored_bytes}: delete jobs whose results you have "
            "(DELETE /jobs/<id>)",
            {"Retry-After": str(STORAGE_RETRY_AFTER_S)},
        )
    if usage.worker_seconds >= quotas.max_worker_seconds_per_hour:
        next_hour = int(HOUR_S - now % HOUR_S) + 1
        raise ApiError(
            ErrorCode.WORKER_TIME_QUOTA_EXCEEDED,
            f"this API key's jobs took {usage.worker_seconds:.0f} s of worker time this hour, "
            f"the most it may ({quotas.max_worker_seconds_per_hour:g} s): send it again in "
            f"{next_hour} s",
            {"Retry-After": str(next_hour)},
        )
