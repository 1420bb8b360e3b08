"""A short client of meshcast's HTTP API (httpx): upload a video, follow its job, download
every file it lists.

    python docs/client.py VIDEO --url http://127.0.0.1:8000 --key example-key-change-me --out OUT

Prints the job's progress as it goes and the files it saved; exits non-zero with the API's
own sentence when the job fails or a request is refused. ``tests/service/test_integration.py``
runs it against a real gateway and worker, so it stays in step with the API.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

POLL_S = 1.0  # between two looks at the job: far below the API's rate limit
TERMINAL = {"succeeded", "failed", "cancelled"}


def run_job(client: httpx.Client, video: Path, out: Path) -> list[Path]:
    """Upload ``video``, wait for its job to end, save its downloads under ``out``."""
    with video.open("rb") as stream:
        created = client.post("/jobs", files={"video": (video.name, stream, "video/mp4")})
    refuse_unless_ok(created)
    job = created.json()
    print(f"job {job['id']} queued", flush=True)
    while job["state"] not in TERMINAL:
        time.sleep(POLL_S)
        answer = client.get(f"/jobs/{job['id']}")
        refuse_unless_ok(answer)
        job = answer.json()
        progress = job.get("progress") or {}
        print(f"{job['state']} {progress.get('stage', '')} {progress.get('done', '')}/"
              f"{progress.get('total', '')}", flush=True)  # fmt: skip
    if job["state"] != "succeeded":
        error = job.get("error") or {}
        raise SystemExit(f"job {job['id']} {job['state']}: {error.get('message', '')}")
    saved = []
    for download in job["links"]["downloads"]:
        answer = client.get(download["url"])
        refuse_unless_ok(answer)
        path = out / download["name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(answer.content)
        saved.append(path)
        print(f"saved {path}", flush=True)
    return saved


def refuse_unless_ok(response: httpx.Response) -> None:
    """Stop with the API's error sentence when a request was refused."""
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        message = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        message = response.text
    raise SystemExit(f"{response.request.method} {response.request.url.path}: "
                     f"{response.status_code} {message}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key the gateway knows")
    parser.add_argument("--out", type=Path, default=Path("out/client"))
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=60.0) as client:
        run_job(client, args.video, args.out)


if __name__ == "__main__":
    sys.exit(main())
