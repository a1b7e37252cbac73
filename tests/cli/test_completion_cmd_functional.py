"""``disruptor completion SHELL``: the shell code completes commands, options and choices, as
bash runs it (zsh and fish are checked when installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # where the disruptor console script is installed
BASH_COMPLETES = """\
source <(disruptor completion bash)
complete -p disruptor
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_python_argcomplete disruptor "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def completions(line: str) -> list[str]:
    done = subprocess.run(
        ["bash", "-c", BASH_COMPLETES, "bash", line],
        env=_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    registered, *words = done.stdout.splitlines()
    assert "-F _python_argcomplete disruptor" in registered
    return [w.strip() for w in words]


@pytest.mark.skipif(not (BIN / "disruptor").exists(), reason="disruptor is not installed")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("disruptor st", {"status", "start", "stop"}),
        ("disruptor sub", {"submit"}),
        ("disruptor submit --pol", {"--policy"}),
        ("disruptor --log-level ", {"debug", "info", "warning", "error"}),
        ("disruptor completion ", {"bash", "zsh", "fish"}),
        ("disruptor trust ", {"add", "ls", "rm"}),
    ],
)
def test_bash_completes_commands_options_and_choices(line: str, expected: set[str]) -> None:
    assert expected <= set(completions(line))


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_code_parses(shell: str) -> None:
    code = subprocess.run(
        [str(BIN / "disruptor"), "completion", shell],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "disruptor" in code and "_ARGCOMPLETE" in code
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: its completion code was not parsed")
    subprocess.run([shell, "-n"], input=code, text=True, timeout=60, check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_with_their_help() -> None:
    done = subprocess.run(
        ["fish", "-c", 'disruptor completion fish | source; complete -C "disruptor st"'],
        env=_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    offered = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert {"status", "start", "stop"} <= set(offered)
    assert offered["status"] == "list the peers a peer knows"
