"""``disruptor pack|keygen|trust``: local commands, run through the real entry point."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from disruptor.cli import main
from disruptor.home import Home

from ..bundles.archives import make_app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pack_is_deterministic_and_prints_the_sha1(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "app")
    code, out, _ = run(capsys, "pack", str(app), "-o", str(tmp_path / "one.tar.zst"))
    assert code == 0
    for path in app.rglob("*"):
        os.utime(path, (5, 5))
    _, out2, _ = run(capsys, "pack", str(app), "-o", str(tmp_path / "two.tar.zst"))
    assert out.strip() == out2.strip()
    data = (tmp_path / "one.tar.zst").read_bytes()
    assert data == (tmp_path / "two.tar.zst").read_bytes()
    assert out.strip() == hashlib.sha1(data).hexdigest()


def test_pack_default_output_name(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "pack", str(make_app(tmp_path / "app")))
    assert code == 0
    assert hashlib.sha1((tmp_path / "demo-1.0.tar.zst").read_bytes()).hexdigest() == out.strip()


def test_pack_errors_are_one_line(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "pack", str(tmp_path / "missing"))
    assert code == 1 and err.startswith("error: ") and "not a directory" in err
    app = make_app(tmp_path / "app")
    (app / "bundle.toml").write_text('name = "Bad Name"\nversion = "1"\n')
    code, _, err = run(capsys, "pack", str(app), "-o", str(tmp_path / "x.tar.zst"))
    assert code == 1 and "name" in err
    assert not (tmp_path / "x.tar.zst").exists()


def _wheel(tmp_path: Path) -> Path:
    """A minimal pure-Python wheel, built by hand so the test needs no index or build backend."""
    path = tmp_path / "tinydep-0.1-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": "VALUE = 42\n",
        "tinydep-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 0.1\n",
        "tinydep-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
        "true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tinydep-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("tinydep-0.1.dist-info/RECORD", record)
    return path


def test_pack_vendors_requirements(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "app")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{_wheel(tmp_path)}\n")
    out_file = tmp_path / "b.tar.zst"
    code, _, err = run(
        capsys, "pack", str(app), "-o", str(out_file), "--requirements", str(requirements)
    )
    assert code == 0, err
    from disruptor.bundles.settings import BundleSettings
    from disruptor.bundles.unpack import unpack_archive

    dest = unpack_archive(out_file, tmp_path / "un", tmp_path / "tmp", BundleSettings())
    assert (dest / "vendor" / "tinydep" / "__init__.py").read_text() == "VALUE = 42\n"
    assert not (app / "vendor").exists()  # the source directory is left alone


def test_keygen_and_trust(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keygen")
    assert code == 0 and "created" in err
    key_id = out.split("key id")[1].split()[0]
    public = out.split("public key")[1].split()[0]
    assert public.startswith("ed25519:") and len(key_id) == 16
    assert stat.S_IMODE(home.signing_key_path.stat().st_mode) == 0o600
    _, out_again, err_again = run(capsys, "keygen")
    assert "exists" in err_again and out_again == out
    _, listing, _ = run(capsys, "trust", "ls")
    assert f"{key_id}  {public}  local" in listing

    from disruptor.bundles.signing import format_public_key, generate_key, public_raw

    other = format_public_key(public_raw(generate_key()))
    code, out, _ = run(capsys, "trust", "add", other)
    assert code == 0
    other_id = out.split()[-1]
    assert other in run(capsys, "trust", "ls")[1]
    assert run(capsys, "trust", "rm", other_id)[0] == 0
    assert other not in run(capsys, "trust", "ls")[1]
    code, _, err = run(capsys, "trust", "add", "ed25519:nothex")
    assert code == 1 and err.startswith("error: ")


@pytest.mark.parametrize(
    "argv", [["pack"], ["keygen"], ["trust"], ["push"], ["ls"], ["pull"], ["trust", "add"]]
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3
