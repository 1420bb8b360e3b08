"""``meshcast gateway``: the HTTP API (FastAPI on uvicorn); ``meshcast gateway hash-key``: the
digest of an API key, for the configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("gateway", invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None,
              help="The service's YAML configuration (default: $MESHCAST_CONFIG, else the "
                   "built-in defaults). MESHCAST_REDIS_URL and MESHCAST_BUNDLE override "
                   "it.")  # fmt: skip
@click.option("--host", default=None, help="Address to listen on (default: gateway.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port to listen on (default: gateway.port).")  # fmt: skip
@click.pass_context
def command(
    ctx: click.Context, config_path: Path | None, host: str | None, port: int | None
) -> None:
    """Serve the HTTP API: upload videos, follow jobs, download results (docs at /docs).

    The bundle's body model is loaded first (the meshes served are posed with it): a missing
    or broken bundle ends the command at once, before it listens.
    """
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from meshcast.service_config import load_service_settings
    from service.gateway import create_app
    from service.gateway.frame_meshes import load_frame_body
    from service.gateway.server import server_config

    settings = load_service_settings(config_path)
    body = load_frame_body(settings.bundle)  # a missing or broken bundle ends here, one line
    click.echo(f"meshcast gateway: meshes posed with the body of {settings.bundle}", err=True)
    config = server_config(
        create_app(settings, body),
        settings.gateway,
        **({"host": host} if host else {}),
        **({"port": port} if port else {}),
    )
    uvicorn.Server(config).run()


@command.command("hash-key")
@click.argument("key", required=False)
def hash_key(key: str | None) -> None:
    """Print the SHA-256 digest of an API key, for `gateway.api_keys` in the configuration.
    Without KEY, it is asked for without echo (and stays out of the shell's history), or read
    from the first line of standard input when that is not a terminal (a pipe)."""
    from service.settings import hash_api_key

    if key is None:
        if sys.stdin.isatty():
            key = click.prompt("API key", hide_input=True)
        else:  # getpass on a pipe warns that it cannot hide what is not shown anyway
            key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        raise click.BadParameter("the API key is empty", param_hint="KEY")
    click.echo(hash_api_key(key))
