"""A per-API-key request limit held in Redis: a fixed window counter.

The first request of a window creates ``P rate:K`` and sets it to expire at the window's end;
each request INCRements it; once past ``limit`` the key's requests are refused until it
expires. Counting and expiring run in one script, so a counter never outlives its window (an
INCR whose EXPIRE was lost would block its key for good). Refused requests count too: they do
not lengthen the window, and a client that hammers gains nothing. A fixed window lets up to
twice ``limit`` through across a window's edge: cheap, and enough to stop abuse.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from service.jobs.keys import Keys

MS_PER_S = 1000

# KEYS: the counter. ARGV: the window in ms. Returns {count, ms until the window ends}.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


@dataclass(frozen=True)
class RateDecision:
    """Whether one request may pass, and what is left of its key's window."""

    allowed: bool
    remaining: int  # requests still allowed in this window
    reset_s: float  # seconds until the window ends (HTTP's Retry-After, rounded up)


class RateLimiter:
    """Counts each API key's requests per window, in Redis (shared by every gateway)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._count = client.register_script(_COUNT)

    def allow(self, key_id: str, limit: int, window_s: float) -> RateDecision:
        """Count one request of ``key_id``; allowed while the window holds at most ``limit``.

        Raises:
            ValueError: a malformed key id, or a limit or window that is not positive.
        """
        if limit <= 0 or window_s <= 0:
            raise ValueError(
                f"a rate limit needs limit > 0 and window_s > 0, not {limit}, {window_s}"
            )
        window_ms = max(1, round(window_s * MS_PER_S))
        count, left_ms = self._count(keys=[self._keys.rate(key_id)], args=[window_ms])
        return RateDecision(
            allowed=int(count) <= limit,
            remaining=max(0, limit - int(count)),
            reset_s=int(left_ms) / MS_PER_S,
        )
