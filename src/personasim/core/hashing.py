"""Content hashes that decide whether a stored result is still the result of its inputs.

Three kinds, each by content and never by name or modification time:

* :func:`config_sha` — a spec section as canonical JSON;
* :func:`referenced_files` — every file or folder a spec section *names* (a survey YAML, a
  ``csv:``/``opinionqa:`` truth, a prompt file, ``targets = "csv:PATH"``, a ``llamacpp:PATH.gguf``
  model...), found by walking the section's values, hashed by content (a folder: every file below
  it, by relative path and content);
* :func:`code_digest` — the source files of the modules that compute a result, so a package
  upgrade that changes, say, the scoring code makes stored scores stale.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from personasim.core.tables import file_sha256

#: ``name:`` prefixes that a file reference may carry (``csv:PATH``, ``opinionqa:PATH``...): a
#: word of two or more letters, so that a Windows drive letter is never taken for one.
_PREFIX = re.compile(r"^[A-Za-z][\w-]+:(?!//)")


def config_sha(config: Any) -> str:
    """SHA-256 of plain data (canonical JSON; paths and other objects as text)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _strings(value: Any) -> Iterator[str]:
    """Every string (or path) leaf of nested dicts, lists and tuples."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str | Path):
        yield str(value)


def _candidates(text: str) -> Iterator[str]:
    """The paths a spec string may name: each comma-separated item with its ``name:`` prefix
    removed (``census,csv:targets.csv`` -> ``targets.csv``; ``llamacpp:m.gguf`` -> ``m.gguf``),
    or the item itself when it looks like a path (a ``/`` or a file suffix); a URL names none."""
    for item in text.split(","):
        item = item.strip()
        if not item or "://" in item:
            continue
        stripped = _PREFIX.sub("", item, count=1)
        if stripped != item:
            yield stripped
        elif "/" in item or Path(item).suffix:  # a bare word ("elections", "VT") is a name
            yield item


def tree_sha256(path: Path) -> str:
    """SHA-256 of a file's content, or of a folder's files (relative path and content each,
    in sorted order; hidden files skipped)."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = child.relative_to(path)
        if any(part.startswith(".") for part in relative.parts):
            continue
        digest.update(f"{relative.as_posix()}\0{file_sha256(child)}\n".encode())
    return digest.hexdigest()


def referenced_files(config: Any) -> dict[str, str]:
    """``{reference: sha256}`` for every existing file or folder named in ``config``.

    A reference that names nothing on disk (a built-in survey such as ``elections``, a backend
    name) is not a file and is left to :func:`config_sha`. A path that stops existing simply
    drops out, which changes the result as well.
    """
    found: dict[str, str] = {}
    for text in _strings(config):
        for candidate in _candidates(text):
            path = Path(candidate).expanduser()
            if candidate not in found and _exists(path):
                found[candidate] = tree_sha256(path)
    return found


def _exists(path: Path) -> bool:
    """True for an existing file or folder (a name too long or otherwise invalid is not one)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _module_files(name: str) -> list[Path]:
    """The ``.py`` files of a module, or of a package and everything below it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: all of its source files
        return sorted(origin.parent.rglob("*.py"))
    return [origin]


@lru_cache(maxsize=64)
def code_digest(modules: Sequence[str]) -> str:
    """SHA-256 over the source of ``modules`` (dotted names; a package counts with all of its
    submodules), each file by its path inside the package and its bytes. Computed once per
    process for the same tuple."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        for path in _module_files(name):
            relative = path.as_posix().rsplit("/personasim/", 1)[-1]
            digest.update(f"{relative}\0".encode() + path.read_bytes() + b"\n")
    return digest.hexdigest()
