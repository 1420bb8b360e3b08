"""Who is asking: API keys (``Authorization: Bearer <key>``), each key's rate limit, and which
jobs a key may see.

Keys are configured as SHA-256 digests (:func:`~service.settings.hash_api_key`); the digest of
the key a request brings is compared with every configured one in constant time
(``hmac.compare_digest``, no early exit), so timing tells nothing about which digest came close.
A job belongs to the key that made it: any other key is told the job does not exist, exactly
as for an unknown id, so ids cannot be probed.
"""

from __future__ import annotations

import hmac
import math

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.gateway.context import Gateway, gateway
from service.gateway.errors import ApiError, ErrorCode
from service.jobs import JobRecord, JobStore
from service.settings import ApiKey, hash_api_key

CHALLENGE = {"WWW-Authenticate": "Bearer"}

# auto_error=False: a missing key is answered by authenticate(), in the API's error shape.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key of the gateway's configuration, as `Authorization: Bearer <key>`.",
)


def authenticate(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    services: Gateway = Depends(gateway),  # noqa: B008
) -> ApiKey:
    """The API key of the request, once it passed its rate limit (a FastAPI dependency).

    Raises:
        ApiError: ``unauthorized`` (no key, or not a configured one), ``rate_limited``.
    """
    if credentials is None:
        raise ApiError(
            ErrorCode.UNAUTHORIZED,
            "send your API key in the header 'Authorization: Bearer <key>'",
            CHALLENGE,
        )
    digest = hash_api_key(credentials.credentials)
    found: ApiKey | None = None
    for key in services.settings.gateway.api_keys:
        if hmac.compare_digest(digest, key.sha256):
            found = key
    if found is None:
        raise ApiError(
            ErrorCode.UNAUTHORIZED,
            "this API key is not known to the gateway: check it, or ask for one",
            CHALLENGE,
        )
    limit = services.settings.gateway.rate_limit
    decision = services.limiter.allow(found.id, limit.requests, limit.window_s)
    if not decision.allowed:
        wait_s = max(1, math.ceil(decision.reset_s))
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            f"this key made more than {limit.requests} requests in {limit.window_s:g} s: "
            f"wait {wait_s} s",
            {"Retry-After": str(wait_s)},
        )
    return found


def owned_job(store: JobStore, job_id: str, key: ApiKey) -> JobRecord:
    """The job ``job_id`` when ``key`` made it.

    Raises:
        ApiError: ``job_not_found``: no such job (malformed, unknown, expired or deleted), or
            another key's, with the same message.
    """
    job = store.get(job_id)
    if job is None or not hmac.compare_digest(job.owner, key.id):
        raise ApiError(
            ErrorCode.JOB_NOT_FOUND,
            "this API key has no job of that id: it may have expired "
            f"(jobs are kept {store.config.ttl_s:g} s after their last change) or been deleted",
        )
    return job
