"""The `rag` command: the library's commands (`rag.cli`) and `rag serve`, which starts the web
app. It lives here, above both packages, so that nothing in `rag/` imports `api/`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rag.cli import IndexOption, app, command, open_service, settings_for


@command(app)
def serve(
    index: IndexOption = None,
    host: Annotated[str | None, typer.Option(help="Default: $RAG_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: $RAG_PORT or 8000.")] = None,
) -> None:
    """Serve the HTTP API (indexing the configured sources first when needed)."""
    import uvicorn

    from api.app import GracefulServer, create_app
    from api.observability import configure_logging

    configure_logging()
    settings = settings_for(index, host=host, port=port)
    service = open_service(settings, create=True)
    config = uvicorn.Config(
        create_app(service),
        host=settings.host,
        port=settings.port,
        access_log=False,
        timeout_graceful_shutdown=5,  # then open requests are cut: stopping takes seconds
    )
    GracefulServer(config, service).run()


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    main()
