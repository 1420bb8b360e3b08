"""The job store's atomic steps, as Lua scripts Redis runs whole (nothing runs between lines).

Each write to a job checks, in the same script, that it may still happen: that the job exists
and is in the right state, and for a worker's writes that the worker still runs it (the hash's
``worker``, and for result files its ``attempts``). So a deleted job is never brought back, a
worker that lost its job to another changes nothing, and a late writer of an ended job is a
no-op. Every script refreshes the TTL of what it writes.

Keys come in ``KEYS`` (built by :class:`service.jobs.keys.Keys`; scripts never spell one), with
one exception: the members of the ``staging`` set, which are full key names themselves.
Field names are :class:`~service.jobs.records.JobRecord`'s, states
:class:`~service.jobs.records.JobState`'s. Events are JSON made by the caller and published
only when the write happened.
"""

from __future__ import annotations

# Whether ARGV's worker runs the job (and, given an attempt, that attempt of it).
_OWNS = """
local function owns(job, worker, attempt)
  local f = redis.call('HMGET', job, 'state', 'worker', 'attempts')
  return f[1] == 'running' and f[2] == worker and (attempt == nil or f[3] == attempt)
end
"""

# KEYS: job, video. ARGV: chunk, offset (the upload's size before it), max bytes, upload ttl ms.
# Appends to an upload whose job does not exist yet. Returns the upload's new size; -1: the job
# exists (its video is closed); -2: too large; -3: the part stored before is gone (expired).
APPEND_VIDEO = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local stored = redis.call('STRLEN', KEYS[2])
if stored ~= tonumber(ARGV[2]) then return -3 end
local size = stored + string.len(ARGV[1])
if size > tonumber(ARGV[3]) then return -2 end
redis.call('APPEND', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return size
"""

# KEYS: job, video. ARGV: ttl ms, whether the job takes an upload ('1'), field 1, value 1, ...
# Creates the job's hash (queued) and gives its upload the job's TTL. Returns 1; 0: the job
# exists already; -1: the upload it takes is gone (expired, or never sent).
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[2] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: job, lock, video. ARGV: worker, lock ms, now, ttl ms, max attempts.
# Returns 'started', or why not: 'missing', 'ended', 'locked' (a live worker holds it), and,
# with the lock taken so that the caller settles the job: 'cancel', 'exhausted'.
START = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'queued' and state ~= 'running' then return 'ended' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'locked' end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return 'cancel' end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[5]) then return 'exhausted' end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[1], 'started_at', ARGV[3],
           'attempts', attempts + 1, 'stage', '', 'done', 0, 'total', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 'started'
"""

# KEYS: lock, job. ARGV: worker, lock ms, ttl ms. Returns 1, or 0: another runs the job.
# A lock that lapsed (a long pause) is taken back while the hash still names this worker.
HEARTBEAT = (
    _OWNS
    + """
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] and (holder or not owns(KEYS[2], ARGV[1])) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""
)

# KEYS: job. ARGV: worker, stage, done, total, ttl ms, channel, event. Returns 1, or 0.
SET_PROGRESS = (
    _OWNS
    + """
if not owns(KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'stage', ARGV[2], 'done', ARGV[3], 'total', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
)

# KEYS: job, lock, video. ARGV: ttl ms, channel, event. Puts a running job whose lock lapsed
# (its worker died) back to 'queued', for a new attempt to start. Returns the attempt it ended;
# 0: a live worker holds the job; -1: the job is not running (queued, ended or gone).
REQUEUE = """
local f = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if f[1] ~= 'running' then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'stage', '', 'done', 0, 'total', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return tonumber(f[2])
"""

# KEYS: the running index. ARGV: job id, attempt. Drops the job's entry if it is that attempt's
# (a newer start has put its own there: that one stays). Returns 1 if it dropped it.
FORGET_RUNNING = """
local attempt = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not attempt or tonumber(attempt) ~= tonumber(ARGV[2]) then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

# KEYS: job. ARGV: ttl ms. Flags a queued or running job; returns its state ('' when gone).
REQUEST_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return state
"""

# KEYS: job, staged file, staging. ARGV: worker, attempt, chunk, '1' for the first chunk, ttl ms.
# Returns 1, or 0: the attempt is no longer the job's running one.
STAGE_CHUNK = (
    _OWNS
    + """
if not owns(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[5])
else
  redis.call('APPEND', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('SADD', KEYS[3], KEYS[2])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 1
"""
)

# KEYS: job, lock, video, staging, files, staged 1..n, published 1..n.
# ARGV: worker, attempt, now, ttl ms, timings, channel, event, name 1..n, size 1..n.
# Publishes the attempt's files and marks the job succeeded, all or nothing. Returns 1; 0: the
# attempt no longer runs the job (its staged files are dropped); -1: a staged file expired.
COMMIT = (
    _OWNS
    + """
local n = (#KEYS - 5) / 2
if not owns(KEYS[1], ARGV[1], ARGV[2]) then
  for i = 1, n do
    redis.call('DEL', KEYS[5 + i])
    redis.call('SREM', KEYS[4], KEYS[5 + i])
  end
  return 0
end
for i = 1, n do
  if redis.call('EXISTS', KEYS[5 + i]) == 0 then return -1 end
end
for i = 1, n do redis.call('SREM', KEYS[4], KEYS[5 + i]) end
for _, left in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('DEL', left) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
for i = 1, n do
  redis.call('RENAME', KEYS[5 + i], KEYS[5 + n + i])
  redis.call('PEXPIRE', KEYS[5 + n + i], ARGV[4])
  redis.call('HSET', KEYS[5], ARGV[7 + i], ARGV[7 + n + i])
end
if n > 0 then redis.call('PEXPIRE', KEYS[5], ARGV[4]) end
redis.call('HSET', KEYS[1], 'state', 'succeeded', 'finished_at', ARGV[3], 'stage', '',
           'timings', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
)

# KEYS: job, lock, video, staging.
# ARGV: state, worker ('' = whoever runs it, or a queued job), error code, message ('' = none),
# now, ttl ms, timings ('' = keep), channel, event.
# Ends a queued or running job as failed or cancelled and drops what it no longer needs.
# Returns 1, or 0: the job had ended, is gone, or another worker runs it.
SETTLE = """
local f = redis.call('HMGET', KEYS[1], 'state', 'worker')
if f[1] ~= 'queued' and f[1] ~= 'running' then return 0 end
if ARGV[2] ~= '' and (f[1] ~= 'running' or f[2] ~= ARGV[2]) then return 0 end
for _, staged in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('DEL', staged) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_at', ARGV[5], 'stage', '')
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'error_code', ARGV[3], 'error_message', ARGV[4])
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'timings', ARGV[7]) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[8], ARGV[9])
return 1
"""
