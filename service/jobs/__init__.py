"""Jobs in Redis: what the gateway and the workers share.

- :mod:`.records`: a job's state, options, record (its hash) and events;
- :mod:`.keys`: every Redis name, from one prefix (the key layout, and why);
- :mod:`.scripts`: the atomic steps (Lua) that keep a job's writes consistent;
- :mod:`.store`: :class:`JobStore`, the operations on jobs;
- :mod:`.rate_limit`: :class:`RateLimiter`, each API key's request limit.
"""

from service.jobs.keys import Keys
from service.jobs.rate_limit import RateDecision, RateLimiter
from service.jobs.records import EventKind, JobOptions, JobRecord, JobState, ProgressEvent
from service.jobs.store import (
    JobClosedError,
    JobStore,
    JobStoreError,
    OwnerUsage,
    ResultsTooLargeError,
    StoreConfig,
    StoredFile,
    VideoTooLargeError,
)

__all__ = [
    "EventKind",
    "JobClosedError",
    "JobOptions",
    "JobRecord",
    "JobState",
    "JobStore",
    "JobStoreError",
    "Keys",
    "OwnerUsage",
    "ProgressEvent",
    "RateDecision",
    "RateLimiter",
    "ResultsTooLargeError",
    "StoreConfig",
    "StoredFile",
    "VideoTooLargeError",
]
