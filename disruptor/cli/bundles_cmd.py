"""Bundle commands: ``pack``, ``keygen``, ``trust add|ls|rm``, ``push``, ``ls``, ``pull``.

``pack`` and ``keygen``/``trust`` work on local files and the data directory only; ``push``,
``ls`` and ``pull`` talk to a peer through the client.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundles.pack import is_excluded, pack_to_file
from ..bundles.signing import (
    format_public_key,
    key_id_of,
    load_or_create_key,
    public_raw,
)
from ..bundles.trust import TrustStore
from ..errors import BadRequest
from ..home import Home
from .common import add_peer_option, client_for, print_json

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Uploads smaller than this finish before a progress bar would be worth drawing.
PROGRESS_BAR_BYTES_MIN = 4 * 1024 * 1024


def register(sub: Any) -> None:
    pack = sub.add_parser(
        "pack",
        help="pack an app directory into a deterministic bundle",
        description="Pack DIR (which holds a bundle.toml) into a deterministic .tar.zst and print "
        "its name, the SHA-1 of its bytes. The same directory always gives the same bytes.",
    )
    pack.add_argument("directory", metavar="DIR", type=Path)
    pack.add_argument(
        "-o", "--output", metavar="FILE", type=Path, help="default NAME-VERSION.tar.zst"
    )
    pack.add_argument(
        "--requirements",
        metavar="FILE",
        type=Path,
        help="vendor these pip requirements into the bundle's vendor/ directory first",
    )
    pack.set_defaults(func=run_pack)

    keygen = sub.add_parser(
        "keygen",
        help="make this user's Ed25519 signing key",
        description="Make the Ed25519 key that signs your bundles ($DISRUPTOR_HOME/keys/"
        "signing.key, mode 0600) and print its public key and key id. Peers sharing this data "
        "directory trust it already; elsewhere run 'disruptor trust add PUBKEY'. An existing "
        "key is kept and printed.",
    )
    keygen.set_defaults(func=run_keygen)

    trust = sub.add_parser(
        "trust",
        help="manage the publisher keys peers accept",
        description="Manage the publishers whose signed bundles the peers of this data "
        "directory accept. Changes apply to running peers at once.",
    )
    actions = trust.add_subparsers(dest="trust_command", metavar="ACTION")
    add = actions.add_parser("add", help="trust a public key", description="Trust PUBKEY.")
    add.add_argument("public_key", metavar="PUBKEY", help="ed25519:<64 hex digits>")
    add.set_defaults(func=run_trust_add)
    ls = actions.add_parser("ls", help="list trusted keys", description="List trusted keys.")
    ls.set_defaults(func=run_trust_ls)
    rm = actions.add_parser(
        "rm", help="stop trusting a key", description="Stop trusting KEY (key id or PUBKEY)."
    )
    rm.add_argument("key", metavar="KEY")
    rm.set_defaults(func=run_trust_rm)
    trust.set_defaults(func=lambda _args: trust.error("give an ACTION: add, ls or rm"))

    push = sub.add_parser(
        "push",
        help="upload a bundle (a directory is packed and signed first)",
        description="Upload PATH to a peer: a .tar.zst, or an app directory that is packed and "
        "signed with your key first. Prints the bundle's SHA-1.",
    )
    push.add_argument("path", metavar="PATH", type=Path)
    add_peer_option(push)
    push.set_defaults(func=run_push)

    bundles_ls = sub.add_parser(
        "ls",
        help="list the bundles a peer holds",
        description="List the bundles a peer holds: SHA-1, name, version, size, signer.",
    )
    add_peer_option(bundles_ls)
    bundles_ls.add_argument("--json", action="store_true", help="print JSON")
    bundles_ls.set_defaults(func=run_ls)

    pull = sub.add_parser(
        "pull",
        help="download a bundle from a peer",
        description="Download bundle SHA1 from a peer, checking its SHA-1 and signed SHA-256.",
    )
    pull.add_argument("sha1", metavar="SHA1")
    add_peer_option(pull)
    pull.add_argument("-o", "--output", metavar="FILE", type=Path, help="default SHA1.tar.zst")
    pull.set_defaults(func=run_pull)


def vendor_requirements(source: Path, requirements: Path, scratch: Path) -> Path:
    """A copy of ``source`` with ``requirements`` installed into its ``vendor/``."""
    copy = scratch / source.name
    shutil.copytree(
        source, copy, symlinks=True, ignore=lambda _d, names: [n for n in names if is_excluded(n)]
    )
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--disable-pip-version-check", "--target", str(copy / "vendor"),
            "-r", str(requirements),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BadRequest(f"pip could not vendor {requirements}: {result.stderr.strip()[-2000:]}")
    return copy


def run_pack(args: argparse.Namespace) -> int:
    source: Path = args.directory
    if not source.is_dir():
        raise BadRequest(f"{source} is not a directory")
    with tempfile.TemporaryDirectory(prefix="disruptor-pack-") as tmp:
        if args.requirements is not None:
            source = vendor_requirements(source, args.requirements, Path(tmp))
        output = args.output or Path(tmp) / "bundle.tar.zst"
        result = pack_to_file(source, output)
        if args.output is None:
            final = Path(f"{result.manifest.name}-{result.manifest.version}.tar.zst")
            shutil.move(output, final)
            output = final
    print(f"packed {result.manifest.name} {result.manifest.version} into {output}", file=sys.stderr)
    print(result.sha1)
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    home = Home.from_env().ensure()
    key, created = load_or_create_key(home.signing_key_path)
    raw = public_raw(key)
    state = "created" if created else "exists"
    print(f"signing key {state}: {home.signing_key_path}", file=sys.stderr)
    print(f"key id      {key_id_of(raw)}")
    print(f"public key  {format_public_key(raw)}")
    return 0


def run_trust_add(args: argparse.Namespace) -> int:
    key = TrustStore.for_home(Home.from_env().ensure()).add(args.public_key)
    print(f"trusted {key.key_id}")
    return 0


def run_trust_ls(args: argparse.Namespace) -> int:
    for key in TrustStore.for_home(Home.from_env()).list():
        print(f"{key.key_id}  {key.text}  {key.source}")
    return 0


def run_trust_rm(args: argparse.Namespace) -> int:
    key_id = TrustStore.for_home(Home.from_env()).remove(args.key)
    print(f"no longer trusted: {key_id}")
    return 0


def run_push(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise BadRequest(f"{path} does not exist")
    bars: list[Any] = []

    def progress(sent: int, total: int) -> None:
        if not bars and total >= PROGRESS_BAR_BYTES_MIN:
            from tqdm import tqdm  # only when there is a bar to draw

            bars.append(tqdm(total=total, unit="B", unit_scale=True, desc="push", file=sys.stderr))
        for bar in bars:
            bar.update(sent)

    key = _signing_key_for_push()
    try:
        with client_for(args) as client:
            result = client.push_bundle(path, key=key, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    state = "stored" if result.created else "already held"
    print(f"{state} on the peer ({result.size} bytes)", file=sys.stderr)
    print(result.sha1)
    return 0


def _signing_key_for_push() -> Ed25519PrivateKey:
    """This user's signing key; one made now for this push is announced on stderr."""
    home = Home.from_env().ensure()
    key, created = load_or_create_key(home.signing_key_path)
    if created:
        raw = public_raw(key)
        print(
            f"created your signing key {home.signing_key_path} (key id {key_id_of(raw)}) to "
            "sign this bundle; peers of this data directory trust it, others need "
            f"'disruptor trust add {format_public_key(raw)}'",
            file=sys.stderr,
        )
    return key


def run_ls(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        bundles = client.list_bundles()
    if args.json:
        print_json(bundles)
        return 0
    for b in bundles:
        print(f"{b['sha1']}  {b['name']:<20} {b['version']:<10} {b['size']:>12}  {b['signer']}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    output: Path = args.output or Path(f"{args.sha1}.tar.zst")
    with client_for(args) as client:
        client.pull_bundle(args.sha1, output)
    print(output)
    return 0
