"""A throw-away PostgreSQL server of the tests' own: ``initdb`` + ``pg_ctl`` on a Unix socket.

Why this and not a shared server or a mock: the PostgreSQL store's promises
(the write lock, triggers, roles, durability across an immediate stop) are
the database's own, so only a real server can show them, and only a private
one can be stopped abruptly without harming anything else. It listens on no
TCP port, only on a socket in its temporary folder, and is removed at the end.

PostgreSQL refuses to run as root; when the tests run as root (CI does), the
server runs as the unprivileged ``postgres`` user that Debian's package
creates, through ``runuser``.

Under CI (``CI`` set, as ``.ci/run`` does) a missing server or psycopg fails
the tests; elsewhere they are skipped with a line saying how to install one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INSTALL_HINT = (
    "PostgreSQL tests need a local PostgreSQL (Debian: `apt-get install postgresql`) "
    "and psycopg (`pip install -e '.[dev]'`); `bash .ci/test` installs both"
)
PORT = 5432
"""Only names the socket file: the server listens on no TCP port."""
SUPERUSER = "cdss_test"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def binaries() -> Path | None:
    """The newest PostgreSQL's bin folder (Debian keeps them per version), or the one on PATH."""
    found = []
    for folder in glob.glob("/usr/lib/postgresql/*/bin"):
        path = Path(folder)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            with contextlib.suppress(ValueError):
                found.append((float(path.parent.name), path))
    if found:
        return max(found)[1]
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    return None


def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    if binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) found"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and PostgreSQL refuses to run as root"
    return None


def require() -> None:
    """Fail under CI, skip elsewhere, when no server can be started."""
    why = unavailable()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"{why}: under CI the PostgreSQL tests must run. {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"{why}. {INSTALL_HINT}")


class PostgresServer:
    """One private cluster in a temporary folder; ``url(db)`` connects over its socket.

    ``durable=False`` (the shared server of the whole run) turns fsync off: those
    tests are about the contract, not power cuts, and creating a database with
    fsync on costs a second each on a busy machine. Servers that tests stop
    abruptly keep fsync on.
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self._handed: list[str] = []
        self._free: list[str] = []
        bin_folder = binaries()
        assert bin_folder is not None
        self.bin = bin_folder
        # Short path: a Unix socket's path must stay under ~100 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="cdss-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.running = False

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stderr or done.stdout}\n{log}")
        return done

    def start(self) -> None:
        options = " ".join(
            (
                "-c listen_addresses=''",
                f"-c unix_socket_directories={self.folder}",
                f"-c port={PORT}",
                "-c max_connections=60",
                "-c shared_buffers=32MB",
                "-c log_min_messages=warning",
                *(() if self.durable else ("-c fsync=off", "-c full_page_writes=off")),
            )
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` is an abrupt stop, as a power cut is to the server."""
        if self.running:
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))
            self.running = False

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@/{database}?host={self.folder}&port={PORT}"

    def admin(self, database: str = "postgres") -> Any:
        """An autocommit superuser connection (psycopg), for setting things up as a DBA would."""
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def new_database(self) -> str:
        """An empty database (new, or one an earlier test used, emptied); returns its URL."""
        if self._free:
            name = self._free.pop()
        else:
            name = "t_" + uuid.uuid4().hex[:16]
            with self.admin() as db:
                db.execute(f"CREATE DATABASE {name}")
        self._handed.append(name)
        return self.url(name)

    def recycle(self) -> None:
        """Empty the databases handed out since the last call, for the next tests.

        Cheaper than a database per test (creating one copies and syncs a
        template; removing hundreds at the end takes long too).
        """
        for name in self._handed:
            with self.admin() as db:
                db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            with self.admin(name) as db:
                db.execute("DROP SCHEMA IF EXISTS cdss CASCADE")
                db.execute("DROP SCHEMA public CASCADE")
                db.execute("CREATE SCHEMA public")
            self._free.append(name)
        self._handed = []


def database_of(url: str) -> str:
    """The database named by a URL that ``PostgresServer.url`` made."""
    return url.partition("?")[0].rpartition("/")[2]


@contextlib.contextmanager
def running_server(*, durable: bool = True) -> Iterator[PostgresServer]:
    server = PostgresServer(durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresServer]:
    """One server for the whole run."""
    require()
    with running_server(durable=False) as server:
        yield server


@pytest.fixture
def postgres_server(postgres_cluster: PostgresServer) -> Iterator[PostgresServer]:
    """The run's server; the databases a test takes from it are emptied after the test."""
    yield postgres_cluster
    postgres_cluster.recycle()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the shared test server."""
    return postgres_server.new_database()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, for tests that stop or break it."""
    require()
    with running_server() as server:
        yield server
