"""The web page as the README shows it: a video uploaded through the page to a running
gateway, followed to the end, and the viewer screenshotted at one moment of the video, in
Debian's chromium (as the page's test drives it, with its helper: run from the repository's
root with ``PYTHONPATH=.``).

    PYTHONPATH=. python docs/web_figure.py --url http://127.0.0.1:8000 \\
        --key example-key-change-me --video meshcast/assets/vtest_clip.mp4 --at 3.0 \\
        docs/web_vtest.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tests.support.browser import browser_page

JOB_TIMEOUT_MS = 600_000
SETTLE_S = 1.0  # the seeked frame decoded and drawn
POLL_S = 0.2


def screenshot(url: str, key: str, video: Path, at_s: float, png: Path) -> None:
    """Upload ``video`` through the page at ``url`` with ``key``; once its bodies show, the
    page at ``at_s`` seconds of the video into ``png``."""
    with browser_page() as page:
        page.goto(f"{url}/")
        page.fill("#key", key)
        page.dispatch_event("#key", "change")
        page.set_input_files("#file", str(video))
        page.locator("#person option").nth(1).wait_for(state="attached", timeout=JOB_TIMEOUT_MS)
        while page.evaluate("document.getElementById('preview').readyState") < 2:
            time.sleep(POLL_S)
        page.evaluate(f"document.getElementById('preview').currentTime = {at_s}")
        time.sleep(SETTLE_S)
        page.locator("#views").screenshot(path=str(png))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("png", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--at", type=float, default=0.0, help="seconds into the video")
    arguments = parser.parse_args()
    screenshot(arguments.url, arguments.key, arguments.video, arguments.at, arguments.png)
