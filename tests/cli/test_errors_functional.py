"""Every subcommand, given a bad argument, says what is wrong in one line on stderr and exits 1
(the error of a peer, a file or a port) or 2 (a usage error): never a traceback."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from disruptor.cli import main
from disruptor.home import Home
from disruptor.peer import Peer

from ..cluster import free_port

SNIPPET = "def handle(item):\n    return item\n"
SHA1 = "0" * 40


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit status and the lines written to stderr by ``disruptor ARGV``."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err.splitlines()


@pytest.fixture
def files(tmp_path: Path, home: Home) -> Path:
    (tmp_path / "f.py").write_text(SNIPPET)
    (tmp_path / "items.jsonl").write_text("1\n")
    (tmp_path / "not-json.jsonl").write_text("1\nnot json\n")
    return tmp_path


NOBODY = f"127.0.0.1:{free_port()}"  # nothing listens there
CASES = [
    # (argv, exit status, words the line must hold); {d} is a scratch directory.
    (["frobnicate"], 2, "invalid choice"),
    (["--log-level", "loud", "status"], 2, "invalid choice"),
    (["peer"], 2, "HOST:PORT"),
    (["peer", "no-port-here"], 1, "needs a port"),
    (["peer", "127.0.0.1:1", "--config", "{d}/missing.toml"], 1, "missing.toml: no such file"),
    (["peer", "127.0.0.1:1", "--set", "nonsense"], 1, "SECTION.KEY=VALUE"),
    (["status", NOBODY], 1, "no peer answered"),
    (["status", "no-port-here"], 1, "needs a port"),
    (["config"], 2, "show"),
    (["config", "show", "--config", "{d}/missing.toml"], 1, "missing.toml: no such file"),
    (["config", "show", "--set", "no.such=1"], 1, "unknown setting"),
    (["start"], 2, "SHA1"),
    (["start", SHA1, "--peer", NOBODY], 1, "no peer answered"),
    (["start", SHA1, "--count", "many"], 2, "invalid int value"),
    (["stop", SHA1, "--peer", NOBODY], 1, "no peer answered"),
    (["stop", SHA1, "--all", "--peers", "2"], 2, "not allowed with"),
    (["pack", "{d}/missing"], 1, "not a directory"),
    (["pack", "{d}"], 1, "bundle.toml"),
    (["keygen", "extra"], 2, "unrecognized arguments"),
    (["trust"], 2, "add, ls or rm"),
    (["trust", "add", "ed25519:xyz"], 1, "64 hex digits"),
    (["trust", "rm", "nobody"], 1, "64 hex digits"),
    (["push", "{d}/missing", "--peer", NOBODY], 1, "does not exist"),
    (["ls", "--peer", NOBODY], 1, "no peer answered"),
    (["pull", "not-a-name", "--peer", NOBODY], 1, "not a bundle name"),
    (["send", NOBODY, "--snippet", "{d}/missing.py", "1"], 1, "missing.py: No such file"),
    (["send", NOBODY, SHA1, "{{"], 1, "not valid JSON"),
    (["send", NOBODY, SHA1], 1, "one JSON item"),
    (["submit", "--items", "{d}/items.jsonl"], 1, "bundle SHA-1 or --snippet"),
    (["submit", SHA1], 2, "--items"),
    (["submit", SHA1, "--items", "{d}/missing.jsonl"], 1, "missing.jsonl: No such file"),
    (["submit", "--snippet", "{d}/missing.py", "--items", "{d}/items.jsonl"], 1, "missing.py"),
    (["submit", SHA1, "--items", "{d}/not-json.jsonl"], 1, "not-json.jsonl:2 is not valid"),
    (["submit", SHA1, "--items", "{d}/items.jsonl", "--peer", NOBODY], 1, "no peer answered"),
    (["demo", "--home", "/proc/no/such/dir"], 1, "/proc/no: No such file"),
    (["completion", "tcsh"], 2, "invalid choice"),
]


@pytest.mark.parametrize(("argv", "status", "words"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_argument_gets_one_line(
    argv: list[str], status: int, words: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run([a.format(d=files) for a in argv], capsys)
    assert code == status, lines
    assert len(lines) == 1, lines
    assert "error: " in lines[0] and words.format(d=files) in lines[0], lines


def test_a_peer_on_a_port_in_use_says_so(home: Home) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = subprocess.run(
            [sys.executable, "-m", "disruptor", "peer", address],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    assert f"error: {address} is in use" in lines[0]


async def test_a_token_of_another_data_directory_says_which_file_and_what_to_do(
    peer: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Home(tmp_path / "elsewhere").ensure()
    other.api_token()
    monkeypatch.setenv("DISRUPTOR_HOME", str(other.root))
    code, lines = await asyncio.to_thread(run, ["status", str(peer.address)], capsys)
    assert code == 1 and len(lines) == 1, lines
    assert str(other.token_path) in lines[0] and "DISRUPTOR_HOME" in lines[0]
