"""How a worker is confined: its environment, limits, user, scratch directory and sandbox.

Rule: a worker sees only what this module hands it. Its environment is built from nothing (no
variable of the peer's leaks, so no secret, token or ``DISRUPTOR_*`` setting); its limits are set
before its first instruction runs (``prlimit``); a peer running as root never runs it as root but
as a uid of its own (``setpriv``); and under bubblewrap it sees the bundle (read-only), its scratch
(a tmpfs of its quota), the Python runtime and system files (read-only), a private /tmp and /proc,
no network, and nothing of the data directory. SECURITY.md states what each mode guarantees.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..bundles.manifest import AppManifest, WorkerLimits
from ..errors import Unavailable
from .settings import WorkerSettings

MIB = 1024 * 1024
# Where things appear inside the bubblewrap sandbox: neutral paths that reveal nothing of the host.
SANDBOX_BUNDLE = "/bundle"
SANDBOX_SCRATCH = "/scratch"
SANDBOX_RUNTIME_DIR = "/opt/disruptor"
SANDBOX_RUNTIME = SANDBOX_RUNTIME_DIR + "/worker_runtime.py"
# Beside the runtime: the packages it imports that the worker's interpreter may lack.
RUNTIME_LIB = "lib"
# The sandbox's own /tmp: a private tmpfs, not the host's.
SANDBOX_TMP = "/tmp"  # noqa: S108
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Read-only system files a dynamically linked interpreter or tool may need; the rest of /etc
# (passwords, keys, host configuration) stays invisible.
SANDBOX_ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/mime.types",
    "/etc/perl",  # Debian's perl looks for its configuration here
)
# Names a bundle may not set in its worker's environment: they belong to the peer.
RESERVED_ENV_PREFIXES = ("DISRUPTOR_",)


def choose_mode(settings: WorkerSettings) -> str:
    """``"bwrap"`` or ``"plain"``, from the setting and what the machine has."""
    wanted = settings.isolation
    if wanted not in ("auto", "bwrap", "plain"):
        raise Unavailable(f"workers.isolation must be auto, bwrap or plain, not {wanted!r}")
    has_bwrap = sys.platform.startswith("linux") and shutil.which("bwrap") is not None
    if wanted == "bwrap" and not has_bwrap:
        raise Unavailable("workers.isolation is 'bwrap' but bubblewrap (bwrap) is not installed")
    if wanted == "plain":
        return "plain"
    return "bwrap" if has_bwrap else "plain"


def runs_as_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to spawn one worker: argv, environment, cwd, and who it runs as."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    # The dedicated uid the worker runs as, or None when it runs as the peer's own user.
    uid: int | None
    mode: str
    # Descriptors the worker inherits (plain mode as root: its directories, see DirectoryHandles).
    pass_fds: tuple[int, ...] = ()


class UidClaim:
    """A uid held for one worker for as long as this object lives, machine-wide.

    The claim is an abstract Unix socket named after the uid: binding it fails if any process on
    the machine (any peer) holds the same uid, and the kernel releases it when we close it or die,
    so there is no lock file to go stale.
    """

    def __init__(self, settings: WorkerSettings, rng: random.Random) -> None:
        for _ in range(64):
            uid = settings.worker_uid_base + rng.randrange(settings.worker_uid_count)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(f"\0disruptor-worker-uid-{uid}")
            except OSError:
                sock.close()
                continue
            if processes_of_uid(uid):
                sock.close()  # something already runs as this uid; never share it
                continue
            self.uid = uid
            self._sock = sock
            return
        raise Unavailable("no free worker uid found; widen workers.worker_uid_count")

    def release(self) -> None:
        self._sock.close()


def processes_of_uid(uid: int) -> list[int]:
    """Live pids whose real uid is ``uid`` (from /proc; racy by nature, so callers loop).

    Zombies are left out: they run nothing and hold nothing, and only their parent (or init)
    can make them go away.
    """
    pids: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return pids


def prepare_scratch(path: Path, uid: int | None) -> Path:
    """A fresh, private scratch directory for one worker, owned by the uid it runs as."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


class DirectoryHandles:
    """Directories handed to a worker as inherited descriptors, named ``/proc/self/fd/N``.

    In plain mode as root the worker's uid cannot walk the path to its bundle and scratch
    directories (the data directory, and often the home directory above it, are 0700). Rather
    than open those to every user, the peer opens each directory itself (``O_PATH``) and the
    worker reaches it through the descriptor: a path through ``/proc/self/fd`` starts at the
    directory and never re-checks its ancestors, so the worker gets these directories and
    nothing else of the tree around them.
    """

    def __init__(self, directories: list[Path]) -> None:
        self.fds: list[int] = []
        try:
            for directory in directories:
                self.fds.append(os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError:
            self.close()
            raise

    def path(self, index: int) -> str:
        return f"/proc/self/fd/{self.fds[index]}"

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def worker_env(
    manifest: AppManifest, bundle_dir: str, scratch_dir: str, tmp_dir: str
) -> dict[str, str]:
    """The whole environment of a worker: a fixed base plus the manifest's own variables."""
    env = {
        key: value
        for key, value in manifest.worker.env.items()
        if not key.startswith(RESERVED_ENV_PREFIXES)
    }
    env.update(
        {
            "PATH": SYSTEM_PATH,
            "HOME": scratch_dir,
            "TMPDIR": tmp_dir,
            "LANG": "C.UTF-8",
            "WORKER_BUNDLE_DIR": bundle_dir,
            "WORKER_SCRATCH_DIR": scratch_dir,
        }
    )
    return env


def limit_args(limits: WorkerLimits) -> list[str]:
    """``prlimit`` options for the manifest's limits (soft = hard, except CPU which warns first)."""
    return [
        f"--as={limits.memory_mb * MIB}",
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 5}",
        f"--nofile={limits.open_files}",
        f"--fsize={limits.file_mb * MIB}",
        f"--nproc={limits.processes}",
        "--core=0",
    ]


def drop_args(uid: int | None) -> list[str]:
    """``setpriv`` options dropping to the worker's uid with no capabilities at all."""
    if uid is None:
        return ["setpriv", "--no-new-privs", "--pdeathsig", "KILL", "--"]
    return [
        "setpriv",
        # In plain mode the worker is the peer's own child: it dies with the peer.
        "--pdeathsig",
        "KILL",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ]


def python_for_workers(settings: WorkerSettings, plain_as_root: bool) -> str:
    """The interpreter handler bundles run on; it must be reachable by the worker's user."""
    configured = settings.python or sys.executable
    real = os.path.realpath(configured)
    if not plain_as_root or _others_can_execute(real):
        return real
    # A per-user interpreter (e.g. under /root) is unreachable by the worker's uid in plain mode;
    # a system one serves the runtime (it needs only the standard library).
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3"):
        resolved = os.path.realpath(candidate)
        if os.path.exists(resolved) and _others_can_execute(resolved):
            return resolved
    raise Unavailable(
        f"the Python at {real} is not reachable by the worker user; install bubblewrap or set "
        "workers.python to an interpreter all users can run"
    )


def _others_can_execute(path: str) -> bool:
    p = Path(path)
    try:
        if not p.stat().st_mode & 0o001:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in p.parents)
    except OSError:
        return False


def _prefix_of(python: str) -> str:
    if os.path.realpath(sys.executable) == python:
        return os.path.realpath(sys.base_prefix)
    return str(Path(python).parent.parent)


def worker_argv(manifest: AppManifest, python: str, runtime: str, bundle_dir: str) -> list[str]:
    """The worker program itself: the Python runtime for a handler, else the manifest's command."""
    if manifest.worker.command is not None:
        return list(manifest.worker.command)
    # -I: ignore PYTHON* variables and user site, and keep the runtime's own directory off
    # sys.path; -B: the bundle is read-only, so do not try to write bytecode into it.
    return [python, "-I", "-B", runtime, bundle_dir]


def plan_plain(
    manifest: AppManifest,
    settings: WorkerSettings,
    *,
    bundle_dir: Path,
    scratch_dir: Path,
    runtime: Path,
    uid: int | None,
    handles: DirectoryHandles | None = None,
) -> LaunchPlan:
    """Plain mode; as root, ``handles`` holds (bundle, scratch, runtime directory) descriptors."""
    python = python_for_workers(settings, plain_as_root=uid is not None)
    bundle, scratch, runtime_path = str(bundle_dir), str(scratch_dir), str(runtime)
    pass_fds: tuple[int, ...] = ()
    if handles is not None:
        bundle, scratch = handles.path(0), handles.path(1)
        runtime_path = f"{handles.path(2)}/{runtime.name}"
        pass_fds = tuple(handles.fds)
    program = worker_argv(manifest, python, runtime_path, bundle)
    argv = ["prlimit", *limit_args(manifest.limits), "--", *drop_args(uid), *program]
    env = worker_env(manifest, bundle, scratch, scratch)
    # It starts in its bundle, and PWD names that directory as WORKER_BUNDLE_DIR does (bwrap's
    # --chdir sets PWD the same way). As root that name is the descriptor's: the real path
    # (what getcwd() answers) runs through directories its uid may not enter.
    env["PWD"] = bundle
    return LaunchPlan(tuple(argv), env, bundle, uid, "plain", pass_fds)


def plan_bwrap(
    manifest: AppManifest,
    settings: WorkerSettings,
    *,
    bundle_dir: Path,
    scratch_bytes: int,
    runtime: Path,
    uid: int | None,
) -> LaunchPlan:
    """Bubblewrap mode; the scratch is a tmpfs of ``scratch_bytes`` inside the sandbox."""
    python = python_for_workers(settings, plain_as_root=False)
    prefix = _prefix_of(python)
    sandbox: list[str] = [
        # bwrap's own process dies with the peer (even a SIGKILLed one), and takes the sandbox
        # with it: its child has --die-with-parent, and the pid namespace ends with that child.
        "setpriv",
        "--pdeathsig",
        "KILL",
        "--",
        "bwrap",
        "--die-with-parent",  # the sandbox dies with the peer
        "--unshare-pid",  # its own pid 1: when it ends, every process inside ends
        "--unshare-net",  # no network but its own loopback
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--new-session",  # no controlling terminal to inject keystrokes into
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for link in ("bin", "lib", "lib32", "lib64", "sbin"):
        target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
        if target is not None:
            sandbox += ["--symlink", target, f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            sandbox += ["--ro-bind", f"/{link}", f"/{link}"]
    made: set[str] = set()
    for path in SANDBOX_ETC:
        if os.path.exists(path):
            for parent in _parents(path):
                if parent not in made:
                    made.add(parent)
                    sandbox += ["--perms", "0755", "--dir", parent]
            sandbox += ["--ro-bind", path, path]
    if not prefix.startswith("/usr/"):
        sandbox += [*_parent_dirs(prefix), "--ro-bind", prefix, prefix]
    sandbox += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # Both writable places are size-limited tmpfs, writable by the worker's uid (sticky, as
        # /tmp is: the sandbox holds one worker and its children, nobody else).
        "--size",
        str(settings.tmp_bytes_max),
        "--perms",
        "1777",
        "--tmpfs",
        SANDBOX_TMP,
        "--size",
        str(scratch_bytes),
        "--perms",
        "1777",
        "--tmpfs",
        SANDBOX_SCRATCH,
        "--ro-bind",
        str(bundle_dir),
        SANDBOX_BUNDLE,
        *_parent_dirs(SANDBOX_RUNTIME_DIR),
        "--ro-bind",
        str(runtime.parent),
        SANDBOX_RUNTIME_DIR,
        "--chdir",
        SANDBOX_BUNDLE,
    ]
    program = worker_argv(manifest, python, SANDBOX_RUNTIME, SANDBOX_BUNDLE)
    argv = [*sandbox, "--", "prlimit", *limit_args(manifest.limits), "--", *drop_args(uid)]
    argv += program
    # bwrap hands its own environment on, and that is exactly this one (built from nothing).
    env = worker_env(manifest, SANDBOX_BUNDLE, SANDBOX_SCRATCH, SANDBOX_TMP)
    return LaunchPlan(tuple(argv), env, "/", uid, "bwrap")


def _parents(path: str) -> list[str]:
    return [str(p) for p in reversed(Path(path).parents) if str(p) != "/"]


def _parent_dirs(path: str) -> list[str]:
    """bwrap options creating ``path``'s ancestors searchable by all (bwrap makes them 0700)."""
    args: list[str] = []
    for parent in _parents(path):
        args += ["--perms", "0755", "--dir", parent]
    return args


def install_runtime(directory: Path) -> Path:
    """Copy the Python worker runtime where every worker (any uid, any mode) can read it, with
    the msgspec package it speaks protocol version 2 with in ``lib/`` beside it (the worker's
    interpreter may not see the peer's packages; the runtime falls back to version 1 when this
    copy does not import there)."""
    source = Path(__file__).resolve().parent.parent / "worker_runtime.py"
    directory.mkdir(parents=True, exist_ok=True)
    # Readable by the worker uids: the runtime is code, not a secret.
    os.chmod(directory, 0o755)  # noqa: S103
    target = directory / "worker_runtime.py"
    tmp = directory / "worker_runtime.py.tmp"
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    _install_package(Path(msgspec.__file__).resolve().parent, directory / RUNTIME_LIB)
    return target


def _install_package(package: Path, lib: Path) -> None:
    """Replace ``lib/<package>`` with a world-readable copy (no bytecode caches)."""
    fresh = lib / f".{package.name}.tmp"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(package, fresh, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [fresh, *fresh.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() or path.suffix == ".so" else 0o644)
    os.chmod(lib, 0o755)  # noqa: S103
    shutil.rmtree(lib / package.name, ignore_errors=True)
    os.replace(fresh, lib / package.name)
