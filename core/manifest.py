"""Manifests: per-file SHA-256 digests of a file or directory and the root digest over them.

A directory's :class:`Manifest` keys every regular file under it by its relative POSIX path;
the **root digest** is the SHA-256 of the concatenated raw 32-byte file digests in path
order (paths compared component by component). That is exactly the subject digest
model-signing 1.1.1 puts in its in-toto payload (file serialization, SHA-256, default
ignores ``.git``, ``.gitattributes``, ``.github``, ``.gitignore`` at the top level).

For a single file, model-signing's subject digest is ``sha256(raw digest of the file)``
(its manifest has one item); :attr:`Manifest.model_signing_digest` gives that value.
:mod:`~mlsecops_provider.core.hashing` computes manifests from the bytes on disk.

:class:`Manifest` and :class:`Diff` are small immutable classes, not dataclasses: importing
``dataclasses`` pulls in ``inspect`` (about 10 ms), which every ``mlsecops hash`` would pay.
"""

from __future__ import annotations

import hashlib

from mlsecops_provider.core.errors import DataError

TYPE_CHECKING = False  # typing is not imported at start-up (see core/cli/contract.py)
if TYPE_CHECKING:  # nor re or collections (``mlsecops hash``)
    from collections.abc import Iterable, Mapping
    from typing import Any

MANIFEST_SCHEMA = "mlsecops.manifest/v1"
DEFAULT_IGNORE = (".git", ".gitattributes", ".github", ".gitignore")  # as model-signing
_HEX = frozenset("0123456789abcdef")


def sort_key(rel: str) -> list[str]:
    """model-signing orders ``PurePosixPath`` keys, i.e. component by component."""
    return rel.split("/")


def check_digest(value: Any, where: str) -> str:
    text = str.__str__(value) if isinstance(value, str) else None  # its characters, as str
    if text is None or len(text) != 64 or not _HEX.issuperset(text):
        raise DataError(f"{where}: must be a SHA-256 as 64 lowercase hex characters")
    return text


class _Frozen:
    """An immutable record over ``__slots__`` (in ``__init__`` order): ==, hash, repr, pickle."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), self._fields()


class Manifest(_Frozen):
    """Per-file SHA-256 digests of a file or directory and the root digest over them.

    ``root_digest`` is computed from ``files``; if one is given it must match (so a
    manifest read back from JSON proves its own consistency). ``ignored`` lists paths that
    were present but left out by ``ignore`` (not digested).
    """

    __slots__ = ("kind", "name", "files", "ignore", "root_digest", "ignored")
    kind: str  # "directory" or "file"
    name: str
    files: Mapping[str, str]
    ignore: tuple[str, ...]
    root_digest: str
    ignored: tuple[str, ...]

    def __init__(
        self,
        kind: str,
        name: str,
        files: Mapping[str, str],
        ignore: Iterable[str] = DEFAULT_IGNORE,
        root_digest: str = "",
        ignored: Iterable[str] = (),
    ) -> None:
        if kind not in ("directory", "file"):
            raise DataError(f"manifest kind: {kind!r} is not 'directory' or 'file'")
        if kind == "file" and len(files) != 1:
            raise DataError("manifest files: a file manifest must list exactly one file")
        checked = {rel: check_digest(d, f"manifest files[{rel!r}]") for rel, d in files.items()}
        self._set("kind", kind)
        self._set("name", name)
        self._set("files", dict(sorted(checked.items(), key=lambda item: sort_key(item[0]))))
        self._set("ignore", tuple(ignore))
        self._set("ignored", tuple(sorted(ignored)))
        computed = self._compute_root()
        if root_digest and root_digest != computed:
            raise DataError(
                f"manifest root_digest: {root_digest} does not match its files ({computed})"
            )
        self._set("root_digest", computed)

    def _compute_root(self) -> str:
        if self.kind == "file":
            return next(iter(self.files.values()))
        root = hashlib.sha256()
        for digest in self.files.values():
            root.update(bytes.fromhex(digest))
        return root.hexdigest()

    @property
    def model_signing_digest(self) -> str:
        """The subject digest model-signing's payload has for the same path."""
        if self.kind == "file":
            return hashlib.sha256(bytes.fromhex(self.root_digest)).hexdigest()
        return self.root_digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "kind": self.kind,
            "name": self.name,
            "algorithm": "sha256",
            "root_digest": self.root_digest,
            "ignore": list(self.ignore),
            "ignored": list(self.ignored),
            "files": dict(self.files),
        }

    def to_json(self) -> str:
        import json  # only when a manifest is written (start-up time of ``mlsecops hash``)

        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        from collections.abc import Mapping

        if not isinstance(data, Mapping):
            raise DataError("manifest: must be a JSON object")
        if data.get("schema") != MANIFEST_SCHEMA:
            raise DataError(f"manifest schema: expected {MANIFEST_SCHEMA!r}")
        if data.get("algorithm") != "sha256":
            raise DataError("manifest algorithm: only 'sha256' is supported")
        for key, kind in (("name", str), ("files", dict), ("ignore", list)):
            if not isinstance(data.get(key), kind):
                raise DataError(f"manifest {key}: missing or not a {kind.__name__}")
        if not all(isinstance(p, str) for p in data["ignore"]):
            raise DataError("manifest ignore: must be a list of relative paths")
        return cls(
            kind=data.get("kind", ""),
            name=data["name"],
            files=data["files"],
            ignore=tuple(data["ignore"]),
            root_digest=check_digest(data.get("root_digest"), "manifest root_digest"),
            ignored=tuple(str(p) for p in data.get("ignored") or ()),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        import json

        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise DataError(f"manifest: not valid JSON ({err})") from err
        return cls.from_dict(data)


class Diff(_Frozen):
    """Paths whose digest changed, that appeared, or that disappeared.

    ``ignored``: paths present under an ignored name (not covered by the digest).
    """

    __slots__ = ("changed", "added", "missing", "ignored")
    changed: tuple[str, ...]
    added: tuple[str, ...]
    missing: tuple[str, ...]
    ignored: tuple[str, ...]

    def __init__(
        self,
        changed: Iterable[str] = (),
        added: Iterable[str] = (),
        missing: Iterable[str] = (),
        ignored: Iterable[str] = (),
    ) -> None:
        self._set("changed", tuple(changed))
        self._set("added", tuple(added))
        self._set("missing", tuple(missing))
        self._set("ignored", tuple(ignored))

    @property
    def matches(self) -> bool:
        return not (self.changed or self.added or self.missing)
