"""Real PostgreSQL and Redis servers for the tests that need them.

Where each comes from, in order:
1. the machine's own server on its standard port (CI machines run both:
   PostgreSQL 127.0.0.1:5432 with trust auth, Redis 127.0.0.1:6379);
2. a throwaway instance started in a temporary folder from the installed
   programs (pg_ctl / redis-server), through the pytest-postgresql and
   pytest-redis executors;
3. otherwise the test fails, saying what to install. Nothing is skipped.

PostgreSQL refuses to run as root, so when the tests run as root the
throwaway server runs as the ``postgres`` user through a small pg_ctl wrapper.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import stat
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest
import sqlalchemy as sa

LOCAL_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
REDIS_PORT = 6379
INSTALL_POSTGRES = (
    "PostgreSQL is needed: start it on 127.0.0.1:5432 (trust auth, user postgres) "
    "or install its programs so a throwaway one can start "
    "(Debian: apt-get install postgresql)"
)
INSTALL_REDIS = (
    "Redis is needed: start it on 127.0.0.1:6379 or install redis-server so a "
    "throwaway one can start (Debian: apt-get install redis-server)"
)


def reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A local TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server the tests may create databases on (user postgres)."""

    host: str
    port: int
    user: str = "postgres"

    def url(self, database: str, driver: str = "postgresql") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def _admin(self) -> sa.engine.Engine:
        return sa.create_engine(
            self.url("postgres"),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 5},
        )

    def create_database(self, prefix: str = "jiebei_test") -> str:
        """A new empty database named ``prefix`` plus a random suffix; its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing its open connections first."""
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        finally:
            admin.dispose()


def _pg_ctl() -> Optional[str]:
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return candidates[-1] if candidates else None


def _world_writable_tempdir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o777)
    return folder


class ThrowawayPostgres:
    """A PostgreSQL server of our own in a temporary folder; can be restarted."""

    def __init__(self) -> None:
        from pytest_postgresql.executors.proc import PostgreSQLExecutor

        pg_ctl = _pg_ctl()
        if pg_ctl is None:
            pytest.fail(INSTALL_POSTGRES)
        self.folder = _world_writable_tempdir("jiebei-pg-")
        executable = pg_ctl
        if os.geteuid() == 0:  # postgres refuses root: run it as the postgres user
            if shutil.which("runuser") is None:
                pytest.fail("running as root needs runuser to start PostgreSQL")
            wrapper = self.folder / "pg_ctl"
            wrapper.write_text(
                f'#!/bin/sh\nexec runuser -u postgres -- "{pg_ctl}" "$@"\n'
            )
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC | stat.S_IXOTH)
            executable = str(wrapper)
        self.port = free_port()
        self.server = Postgres(LOCAL_HOST, self.port)
        self.executor = PostgreSQLExecutor(
            executable=executable,
            host=LOCAL_HOST,
            port=self.port,
            datadir=str(self.folder / "data"),
            unixsocketdir=str(self.folder),
            logfile=str(self.folder / "postgres.log"),
            startparams="-w",
            dbname="postgres",
            timeout=60,
        )

    def start(self) -> None:
        """Start the server (a fresh data folder on the first start)."""
        self.executor.start()

    def stop(self) -> None:
        """Stop the server, keeping its data."""
        self.executor.stop()

    def restart(self) -> None:
        """Stop and start again: the clients' connections break, the data stays."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server if it runs and remove its folder."""
        try:
            if self.executor.running():
                self.executor.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started throwaway PostgreSQL, removed afterwards; fails if it cannot start."""
    server = ThrowawayPostgres()
    try:
        server.start()
    except Exception as error:  # the programs are there but do not start
        server.close()
        pytest.fail(f"{INSTALL_POSTGRES}; starting a throwaway one failed: {error}")
    try:
        yield server
    finally:
        server.close()


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """The machine's PostgreSQL, or a throwaway one."""
    if reachable(LOCAL_HOST, POSTGRES_PORT):
        yield Postgres(LOCAL_HOST, POSTGRES_PORT)
        return
    with throwaway_postgres() as server:
        yield server.server


@dataclass(frozen=True)
class Redis:
    """A Redis server the tests may use (under key prefixes of their own)."""

    host: str
    port: int


@contextmanager
def redis_server() -> Iterator[Redis]:
    """The machine's Redis, or a throwaway one."""
    if reachable(LOCAL_HOST, REDIS_PORT):
        yield Redis(LOCAL_HOST, REDIS_PORT)
        return
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(INSTALL_REDIS)
    from pytest_redis.executor.process import RedisExecutor

    folder = Path(tempfile.mkdtemp(prefix="jiebei-redis-"))
    port = free_port()
    executor = RedisExecutor(
        executable=executable,
        databases=16,
        redis_timeout=30,
        loglevel="warning",
        host=LOCAL_HOST,
        port=port,
        datadir=folder,
    )
    try:
        executor.start()
    except Exception as error:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"{INSTALL_REDIS}; starting a throwaway one failed: {error}")
    try:
        yield Redis(LOCAL_HOST, port)
    finally:
        executor.stop()
        shutil.rmtree(folder, ignore_errors=True)
