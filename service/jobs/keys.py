"""Every Redis name the job store uses, built in one place from one prefix.

``P`` is the prefix (``meshcast:`` by default), ``J`` a job id, ``N`` an attempt (1, 2, …),
``NAME`` a result file's relative path (``result.json``, ``tracks/track_001.glb``), ``K`` an API
key's id:

=============================  =======  ==============================================  ==========
name                           type     holds                                           expires
=============================  =======  ==============================================  ==========
``P job:{J}``                  hash     the :class:`~service.jobs.records.JobRecord`    job TTL
``P job:{J}:video``            string   the upload, APPENDed chunk by chunk             upload TTL⁴
``P job:{J}:lock``             string   the id of the worker running the job            lock TTL²
``P job:{J}:staging``          set      the names of every attempt's staged files       job TTL¹
``P job:{J}:stage:N:NAME``     string   a result file of attempt N, not yet visible     job TTL¹
``P job:{J}:files``            hash     ``NAME`` → size in bytes of the visible files   job TTL
``P job:{J}:file:NAME``        string   a visible result file                           job TTL
``P job:{J}:events``           channel  :class:`~service.jobs.records.ProgressEvent`    (not a key)
``P running``                  zset     the ids of running jobs, scored by attempt      job TTL³
``P rate:K``                   string   K's requests in the current window              the window
``P owner:K:jobs``             zset     the ids of K's jobs, scored by creation time    job TTL⁵
``P usage:K:H``                string   worker seconds spent on K's jobs in hour ``H``  2 hours
=============================  =======  ==============================================  ==========

¹ deleted as soon as the job succeeds, fails or is cancelled. ² refreshed by the worker's
heartbeat; a job ``running`` without it has lost its worker. ³ refreshed by every start; a job
leaves it as it ends (Redis deletes an empty set). ⁴ while its job does not exist yet (the
upload is in progress), the upload TTL from its last chunk: an upload whose gateway died
vanishes by itself; then the job TTL, and deleted as the job ends. ⁵ refreshed by every
creation; an entry whose job is gone is dropped when the index is read.

Why this layout:

- ``{J}`` is a hash tag: every key of a job falls in one Redis Cluster slot, so the Lua scripts
  that move several of them at once stay legal on a cluster.
- Files (and the video) are string keys, one each, not fields of one hash: GETRANGE streams a
  chunk of a tens-of-MB preview without loading it whole (HGET returns a field entire), APPEND
  builds one as it arrives, RENAME publishes one in O(1), and MEMORY USAGE weighs one.
- A result file is written under its attempt's ``stage`` name and RENAMEd into place in the
  same script that marks the job succeeded (see :mod:`service.jobs.scripts`): readers see all of
  one attempt's files or none, never two attempts mixed. ``staging`` lists the staged names so
  that leftovers of a killed attempt are found without SCAN and deleted.
- The lock is its own key because only a key can expire by itself (hash fields cannot, before
  Redis 7.4): its expiry is how a dead worker is told from a live one.
- The events are pub/sub, which holds nothing in memory; a late subscriber reads the hash first.
- ``running`` is how a dead worker's job is found without SCAN: the workers' reaper reads it
  (:meth:`~service.jobs.store.JobStore.requeue_stale`). It spans jobs, so it cannot share a
  cluster slot with theirs and is written beside the scripts, not in them: an entry can outlive
  its job by a moment, and the reaper drops such entries as it meets them. The score is the
  attempt that entered it, so that dropping an old attempt's entry never drops a newer one's.
- The rate counter expires with its window (a fixed window: INCR, PEXPIRE on the first hit).
- ``owner:K:jobs`` and ``usage:K:H`` are how an API key's quotas are counted without SCAN
  (:meth:`~service.jobs.store.JobStore.owner_usage`). Like ``running`` they span jobs, and are
  written beside the scripts. ``H`` is the hour since the epoch (a fixed window).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

DEFAULT_PREFIX = "meshcast:"
JOB_ID_BYTES = 16  # 128 random bits: unguessable, and unique without a check
# token_urlsafe's alphabet; the bound keeps a caller's id (from a URL) from bloating a key.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# A relative path of plain names: no "..", no leading "/", nothing a glob or hash tag reads.
FILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


def new_job_id() -> str:
    """A fresh job id: URL-safe, unguessable (``secrets``)."""
    return secrets.token_urlsafe(JOB_ID_BYTES)


def is_job_id(text: str) -> bool:
    """Whether ``text`` has the shape of a job id (a cheap check before any Redis call)."""
    return JOB_ID_PATTERN.fullmatch(text) is not None


@dataclass(frozen=True)
class Keys:
    """The names under one prefix. Each method checks the ids it is given.

    Raises (every method):
        ValueError: a malformed job id, file name or key id.
    """

    prefix: str = DEFAULT_PREFIX

    def job(self, job_id: str) -> str:
        """The job's hash."""
        if not is_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return f"{self.prefix}job:{{{job_id}}}"

    def video(self, job_id: str) -> str:
        """The uploaded video."""
        return f"{self.job(job_id)}:video"

    def lock(self, job_id: str) -> str:
        """The running worker's lock."""
        return f"{self.job(job_id)}:lock"

    def staging(self, job_id: str) -> str:
        """The set of staged file keys, every attempt's."""
        return f"{self.job(job_id)}:staging"

    def staged_file(self, job_id: str, attempt: int, name: str) -> str:
        """A result file of one attempt, before it is published."""
        return f"{self.job(job_id)}:stage:{attempt}:{_file_name(name)}"

    def files(self, job_id: str) -> str:
        """The index of published files: name → size."""
        return f"{self.job(job_id)}:files"

    def file(self, job_id: str, name: str) -> str:
        """A published result file."""
        return f"{self.job(job_id)}:file:{_file_name(name)}"

    def events(self, job_id: str) -> str:
        """The job's pub/sub channel."""
        return f"{self.job(job_id)}:events"

    def running(self) -> str:
        """The index of running jobs (id → attempt), which the reaper reads."""
        return f"{self.prefix}running"

    def rate(self, key_id: str) -> str:
        """An API key's request counter."""
        return f"{self.prefix}rate:{_key_id(key_id)}"

    def owner_jobs(self, key_id: str) -> str:
        """The index of an API key's jobs (id → creation time)."""
        return f"{self.prefix}owner:{_key_id(key_id)}:jobs"

    def usage(self, key_id: str, hour: int) -> str:
        """The worker seconds spent on an API key's jobs in one hour since the epoch."""
        return f"{self.prefix}usage:{_key_id(key_id)}:{hour}"


def _key_id(key_id: str) -> str:
    if KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise ValueError(f"not a key id: {key_id!r}")
    return key_id


def _file_name(name: str) -> str:
    if FILE_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"not a result file name: {name!r}")
    return name
