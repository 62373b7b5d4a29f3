"""``mlsecops hash`` and ``mlsecops verify``: manifest digests of models and folders.

``hash PATH [--out MANIFEST]`` prints the root digest (equal to OpenSSF model-signing's
subject digest for a directory; the plain SHA-256 for a file) and can write the manifest.
``verify PATH --manifest MANIFEST`` exits 0 if PATH matches, 1 listing changed / added /
missing files, 2 if it could not check (missing path, bad manifest, escaping symlink).
MANIFEST may be a local path, ``file://`` or ``s3://`` URI.
"""

from __future__ import annotations

from mlsecops_provider.core.cli.contract import EXIT_FAIL, EXIT_PASS, positive_int
from mlsecops_provider.core.cli.light import Argument, LightCommand
from mlsecops_provider.core.hashing import compare, hash_path
from mlsecops_provider.core.manifest import Manifest

TYPE_CHECKING = False  # typing is not imported at start-up (see contract.py)
if TYPE_CHECKING:
    from typing import Any

    from mlsecops_provider.core.cli.light import Arguments


def register(subparsers: Any) -> None:
    for command in LIGHT_COMMANDS:
        command.register(subparsers)


def run_hash(args: Arguments) -> int:
    manifest = hash_path(args.path, workers=args.workers)
    if args.out:  # storage (and its imports) only when a manifest is written
        import logging

        from mlsecops_provider.core.storage import normalise_uri, storage_for

        uri = normalise_uri(args.out)
        storage_for(uri).write_bytes(uri, manifest.to_json().encode(), "application/json")
        logging.getLogger(__name__).info(
            "wrote manifest of %d files to %s", len(manifest.files), uri
        )
    print(manifest.root_digest)
    return EXIT_PASS


def run_verify(args: Arguments) -> int:
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    uri = normalise_uri(args.manifest)
    manifest = Manifest.from_json(storage_for(uri).read_bytes(uri))
    diff = compare(manifest, args.path, workers=args.workers)
    for path in diff.ignored:
        print(f"  ignored (not covered by the digest): {path}")
    if diff.matches:
        print(f"OK {args.path}: {len(manifest.files)} file(s) match sha256:{manifest.root_digest}")
        return EXIT_PASS
    print(f"MISMATCH {args.path} against {args.manifest}:")
    for label, paths in (
        ("changed", diff.changed),
        ("added", diff.added),
        ("missing", diff.missing),
    ):
        for path in paths:
            print(f"  {label}: {path}")
    return EXIT_FAIL


_WORKERS = Argument("--workers", type=positive_int, help="threads (default: all cores)")
LIGHT_COMMANDS = (
    LightCommand(
        "hash",
        run_hash,
        help="print the SHA-256 root digest of a file or directory",
        description="Hash a file or directory; print its root digest (model-signing's for "
        "a directory). Exit 0, or 2 if it cannot be hashed.",
        arguments=(
            Argument("path", metavar="PATH", help="file or directory to hash"),
            Argument("--out", metavar="MANIFEST", help="write the manifest JSON here"),
            _WORKERS,
        ),
    ),
    LightCommand(
        "verify",
        run_verify,
        help="check a file or directory against a manifest",
        description="Re-hash PATH and compare with MANIFEST. Exit 0 match, 1 mismatch, "
        "2 could not check.",
        arguments=(
            Argument("path", metavar="PATH", help="file or directory to check"),
            Argument(
                "--manifest",
                metavar="MANIFEST",
                required=True,
                help="manifest JSON from 'hash --out'",
            ),
            _WORKERS,
        ),
    ),
)
