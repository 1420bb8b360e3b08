"""``meshcast fetch-bundle``: a model bundle downloaded from a URL into a folder (a
deployment's init container; :mod:`service.bundle_fetch`)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

from meshcast.progress import progress_bar


@click.command("fetch-bundle")
@click.argument("url")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--sha256", default=None,
              help="The archive's expected sha256 (64 hex digits): a different archive is "
                   "refused, and a DEST that already holds this one is left as it is.")  # fmt: skip
def command(url: str, dest: Path, sha256: str | None) -> None:
    """Download the bundle archive at URL (http, https or file; a .tar.gz of the bundle's
    folder, e.g. `tar -czf bundle.tar.gz -C bundles/default .`) into the folder DEST, check it
    and load it; only then does it replace what DEST held."""
    from service.bundle_fetch import fetch_bundle

    with progress_bar(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  transient=True) as progress:  # fmt: skip
        task = progress.add_task(f"fetch {url}", total=None)

        def show(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        fetched = fetch_bundle(url, dest, sha256, show)
    manifest = fetched.bundle.manifest
    how = "downloaded" if fetched.downloaded else "already there"
    click.echo(f"{dest}: {manifest.family} bundle, archive sha256 {fetched.sha256} ({how})")
