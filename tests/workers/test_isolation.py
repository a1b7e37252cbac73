"""Launch plans: what a worker is given, checked without starting one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from disruptor.bundles.manifest import parse_app_manifest
from disruptor.errors import Unavailable
from disruptor.workers import isolation
from disruptor.workers.settings import WorkerSettings

MANIFEST = parse_app_manifest(
    'name = "t"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'
    'env = { GREETING = "hi", DISRUPTOR_API_TOKEN = "nope" }\n'
    "[limits]\nmemory_mb = 100\ncpu_s = 10\nopen_files = 32\nfile_mb = 2\nprocesses = 8\n"
)


def test_environment_is_built_from_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_OF_THE_PEER", "x")
    env = isolation.worker_env(MANIFEST, "/b", "/s", "/t")
    assert env == {
        "GREETING": "hi",
        "PATH": isolation.SYSTEM_PATH,
        "HOME": "/s",
        "TMPDIR": "/t",
        "LANG": "C.UTF-8",
        "WORKER_BUNDLE_DIR": "/b",
        "WORKER_SCRATCH_DIR": "/s",
    }


def test_limits_become_prlimit_options() -> None:
    args = isolation.limit_args(MANIFEST.limits)
    assert "--as=104857600" in args and "--cpu=10:15" in args and "--nofile=32" in args
    assert "--fsize=2097152" in args and "--nproc=8" in args and "--core=0" in args


def test_dropping_privileges_clears_groups_and_capabilities() -> None:
    args = isolation.drop_args(2_000_000_123)
    for option in (
        "--reuid=2000000123",
        "--regid=2000000123",
        "--clear-groups",
        "--no-new-privs",
        "--bounding-set=-all",
        "--pdeathsig",
    ):
        assert option in args
    assert "--reuid" not in " ".join(isolation.drop_args(None))


def test_bwrap_plan_mounts_no_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "home"
    bundle, runtime = data / "b", data / "r" / "worker_runtime.py"
    plan = isolation.plan_bwrap(
        MANIFEST, WorkerSettings(), bundle_dir=bundle, scratch_bytes=3 << 20, runtime=runtime,
        uid=2_000_000_001,
    )  # fmt: skip
    argv = list(plan.argv)
    assert "--unshare-net" in argv and "--unshare-pid" in argv and "--die-with-parent" in argv
    sources = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    under_data = [s for s in sources if s.startswith(str(data))]
    assert sorted(under_data) == sorted([str(bundle), str(runtime.parent)])
    assert "--bind" not in argv  # nothing of the host is writable
    # The scratch and /tmp are size-limited tmpfs the worker's uid may write.
    tmpfs = {argv[i + 1]: argv[i - 4 : i] for i, a in enumerate(argv) if a == "--tmpfs"}
    assert tmpfs[isolation.SANDBOX_SCRATCH] == ["--size", str(3 << 20), "--perms", "1777"]
    tmp_size = str(WorkerSettings().tmp_bytes_max)
    assert tmpfs[isolation.SANDBOX_TMP] == ["--size", tmp_size, "--perms", "1777"]
    assert plan.env["HOME"] == isolation.SANDBOX_SCRATCH and plan.uid == 2_000_000_001
    assert argv[-3:] == ["-B", isolation.SANDBOX_RUNTIME, isolation.SANDBOX_BUNDLE]


def test_command_bundles_run_their_own_program(tmp_path: Path) -> None:
    manifest = parse_app_manifest(
        'name = "p"\nversion = "1"\n[worker]\ncommand = ["perl", "worker.pl"]\n'
    )
    plan = isolation.plan_plain(
        manifest, WorkerSettings(), bundle_dir=tmp_path, scratch_dir=tmp_path / "s",
        runtime=tmp_path / "worker_runtime.py", uid=None,
    )  # fmt: skip
    assert plan.argv[-2:] == ("perl", "worker.pl") and plan.argv[0] == "prlimit"
    assert plan.cwd == plan.env["PWD"] == plan.env["WORKER_BUNDLE_DIR"] == str(tmp_path)


def test_plain_mode_as_root_starts_in_the_bundle_by_its_descriptor(tmp_path: Path) -> None:
    """As root, the worker's uid reaches its directories only through inherited descriptors:
    its working directory, PWD and WORKER_BUNDLE_DIR all name the bundle that way."""
    bundle, scratch, runtime = tmp_path / "b", tmp_path / "s", tmp_path / "r"
    for directory in (bundle, scratch, runtime):
        directory.mkdir()
    handles = isolation.DirectoryHandles([bundle, scratch, runtime])
    try:
        plan = isolation.plan_plain(
            # Any program all users may run stands in for the interpreter here.
            MANIFEST, WorkerSettings(python="/bin/sh"), bundle_dir=bundle,
            scratch_dir=scratch, runtime=runtime / "worker_runtime.py", uid=2_000_000_001,
            handles=handles,
        )  # fmt: skip
    finally:
        handles.close()
    descriptor = f"/proc/self/fd/{plan.pass_fds[0]}"
    assert plan.cwd == plan.env["PWD"] == plan.env["WORKER_BUNDLE_DIR"] == descriptor
    assert plan.env["HOME"] == f"/proc/self/fd/{plan.pass_fds[1]}"


def test_mode_choice() -> None:
    assert isolation.choose_mode(WorkerSettings(isolation="plain")) == "plain"
    with pytest.raises(Unavailable):
        isolation.choose_mode(WorkerSettings(isolation="docker"))


def test_uid_claims_are_exclusive() -> None:
    settings = WorkerSettings(worker_uid_count=1)
    first = isolation.UidClaim(settings, random.Random(1))
    try:
        with pytest.raises(Unavailable):
            isolation.UidClaim(settings, random.Random(2))
    finally:
        first.release()
    again = isolation.UidClaim(settings, random.Random(3))
    assert again.uid == settings.worker_uid_base
    again.release()


def test_directory_handles_name_proc_fd_paths(tmp_path: Path) -> None:
    handles = isolation.DirectoryHandles([tmp_path])
    try:
        assert Path(handles.path(0)).resolve() == tmp_path.resolve()
    finally:
        handles.close()
    assert handles.fds == []
