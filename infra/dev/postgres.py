"""A real PostgreSQL per ``Postgres``, from the machine's package (Debian: ``postgresql``).

Each database has its own data folder in the stage's local store, so its data survives
a restart (``--reset`` starts empty). The server listens on 127.0.0.1 only, with TLS on
(a self-signed certificate made here), because the link's ``url`` asks for
``sslmode=require`` as Aurora does. The master password is random, kept beside the data
and in the embedded Secrets Manager under the link's ``secretArn``.

PostgreSQL refuses to run as root; as root (CI containers) the server runs as the
``postgres`` user the package creates.

After a crash, :func:`recover` clears what the killed ``infra dev`` left in the data
folder before the ports are checked: its own server still running (stopped cleanly),
or a ``postmaster.pid`` naming a process id the system has since given to another
program (PostgreSQL would refuse to start, taking it for a second server).
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from infra.dev.children import ending_with_supervisor
from infra.dev.functions import LogStream
from infra.dev.model import ClusterSpec, DevError

READY = "database system is ready to accept connections"
ORPHAN_STOP_SECONDS = 30


def _command_line(pid: int) -> list[str] | None:
    """A running process's arguments (None when it is gone, a zombie, or unknown here)."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (OSError, IndexError):
        return None


def recover(data: Path, say: Callable[[str], None]) -> None:
    """Make ``data`` startable after a killed ``infra dev``; nothing to do after a clean stop.

    The lock file's first line is the server's process id. A server of ours still running
    on this folder (left by an ``infra dev`` that could not stop it) gets PostgreSQL's
    fast shutdown; a lock naming a live process that is not that server is stale and goes.
    """
    lock = data / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if not Path("/proc/self/cmdline").exists():
        return  # no way to tell here; PostgreSQL's own check decides
    arguments = _command_line(pid)
    if arguments is None:
        return  # the process is gone: PostgreSQL removes a stale lock itself
    ours = Path(arguments[0]).name == "postgres" and str(data) in arguments
    if not ours:
        say(f"removing a stale PostgreSQL lock in {data} (its process id {pid} now belongs to another program)")
        lock.unlink(missing_ok=True)
        return
    say(f"stopping the PostgreSQL (pid {pid}) an earlier infra dev left running on {data}")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # fast shutdown: clean, and it ends the server's own children
    deadline = time.monotonic() + ORPHAN_STOP_SECONDS
    while _command_line(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if _command_line(pid) is not None:
        raise DevError(f"PostgreSQL (pid {pid}) left running on {data} did not stop; end it with kill {pid}")


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise DevError("PostgreSQL cannot run as root and this machine has no 'postgres' user; "
                       "install the postgresql package or run infra dev as another user") from None


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


class LocalPostgres:
    """One PostgreSQL server for one ``Postgres`` component, as a child process."""

    def __init__(self, spec: ClusterSpec, folder: Path, port: int, binaries: Path, log: LogStream) -> None:
        self.spec = spec
        self.folder = folder
        self.port = port
        self.binaries = binaries
        self.log = log
        self.data = folder / "data"
        self._process: subprocess.Popen[str] | None = None
        self._user = _run_as()
        self._tail: list[str] = []

    @property
    def password(self) -> str:
        path = self.folder / "password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            os.chmod(path, 0o600)
        return path.read_text().strip()

    @property
    def url(self) -> str:
        return f"postgresql://{self.spec.username}@127.0.0.1:{self.port}/{self.spec.database}"

    def _own(self, *paths: Path) -> None:
        if self._user is not None:
            for path in paths:
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _subprocess_user(self) -> dict[str, int]:
        return {"user": self._user.pw_uid, "group": self._user.pw_gid} if self._user else {}

    def _initdb(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            # The server's user must reach its folder through every parent.
            for parent in [self.folder, *self.folder.parents]:
                if not os.stat(parent).st_mode & 0o001:
                    raise DevError(
                        f"PostgreSQL runs as 'postgres' here and cannot enter {parent}; "
                        "move the project (or HARBOR_DEV_DIR) under a folder others may traverse"
                    )
        self.data.mkdir(mode=0o700, exist_ok=True)
        password_file = self.folder / "initdb-password"
        password_file.write_text(self.password)
        self._own(self.data, password_file)
        result = subprocess.run(
            [str(self.binaries / "initdb"), "-D", str(self.data), "-U", self.spec.username, "-E", "UTF8",
             "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-sync"],
            capture_output=True, text=True, timeout=120, **self._subprocess_user(),
        )
        password_file.unlink()
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise DevError(f"initdb failed for {self.spec.label}: {result.stderr.strip().splitlines()[-1:]}")
        cert, key = _self_signed(self.data)
        self._own(cert, key)

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._process = subprocess.Popen(
            [str(self.binaries / "postgres"), "-D", str(self.data),
             "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
             "-c", "unix_socket_directories=", "-c", "ssl=on",
             "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **self._subprocess_user(),
            # SIGINT is PostgreSQL's fast shutdown: clean, and it stops the server's own children.
            preexec_fn=ending_with_supervisor(signal.SIGINT),
        )
        deadline = time.monotonic() + 60
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._tail = [*self._tail[-5:], line.strip()]
            if READY in line:
                break
            if time.monotonic() > deadline:
                break
        if self._process.poll() is not None or not any(READY in line for line in self._tail):
            self.stop()
            raise DevError(f"PostgreSQL for {self.spec.label} did not start: {' | '.join(self._tail[-3:])}")
        threading.Thread(target=self._forward, daemon=True).start()
        self._create_database()

    def _forward(self) -> None:
        stream = self._process.stderr if self._process else None
        for line in stream or []:
            if "ERROR" in line or "FATAL" in line or "PANIC" in line:
                self.log.service(self.spec.label.lower(), line.strip())

    def _create_database(self) -> None:
        marker = self.folder / f"created-{self.spec.database}"
        if marker.exists() or self.spec.database == "postgres":
            return
        result = subprocess.run(
            [str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.spec.username,
             self.spec.database],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PGPASSWORD": self.password, "PGSSLMODE": "require"},
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise DevError(f"could not create database {self.spec.database!r}: {result.stderr.strip()}")
        marker.write_text("")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # fast shutdown: clean, without waiting for clients
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
