"""Where inputs are read from and results written to: local paths or URIs, through pyarrow filesystems.

A location is a local path (``runs/``, ``/data/day1.jsonl``) or a URI that `pyarrow.fs` opens
(``s3://bucket/prefix``, ``gs://…``, ``hdfs://…``, ``file:///abs/path``). Inputs may also be globs
(``runs/*.jsonl``, ``s3://bucket/2026-12-*/spans.json``) and directories (every file below,
hidden ones excepted). Remote input files are copied to a temporary directory and read with the
same loaders as local ones (`auditor.collectors.loading`); every issue still names the URI.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow.fs as pafs

    from auditor.collectors.issues import LoadResult

_MAGIC = set("*?[")


def is_uri(location: str) -> bool:
    """True for ``scheme://…`` (a Windows drive letter is no scheme)."""
    scheme, sep, _ = str(location).partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


@dataclass(frozen=True)
class Location:
    """A place on a pyarrow filesystem: ``fs`` and ``path`` (the filesystem's own path form), and
    ``uri``, how the user wrote it (for messages and for DuckDB)."""

    fs: "pafs.FileSystem"
    path: str
    uri: str

    def join(self, *parts: str) -> "Location":
        path = "/".join([self.path.rstrip("/"), *parts])
        uri = "/".join([self.uri.rstrip("/"), *parts])
        return Location(self.fs, path, uri)

    @property
    def local(self) -> bool:
        import pyarrow.fs as pafs

        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def duckdb_path(self) -> str:
        """The form DuckDB reads: a local path, else the URI (s3:// and the like need DuckDB's
        httpfs extension)."""
        return self.path if self.local else self.uri


def _from_uri(uri: str) -> tuple["pafs.FileSystem", str]:
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(uri)


def open_location(location: str | os.PathLike[str]) -> Location:
    """The filesystem and path of a local path or a URI (``file://`` URIs become local paths)."""
    import pyarrow.fs as pafs

    text = os.fspath(location)
    if is_uri(text):
        fs, path = _from_uri(text)
        return Location(fs, path, text if not isinstance(fs, pafs.LocalFileSystem) else path)
    path = str(Path(text).expanduser().resolve())
    return Location(pafs.LocalFileSystem(), path, path)


def _files_under(loc: Location) -> list[Location]:
    import pyarrow.fs as pafs

    infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True))
    root = loc.path.rstrip("/")
    out = []
    for info in infos:
        rel = info.path[len(root):].lstrip("/")
        if info.type == pafs.FileType.File and not any(p.startswith(".") for p in rel.split("/")):
            out.append(loc.join(rel))
    return sorted(out, key=lambda x: x.path)


def _glob_remote(pattern: str) -> list[Location]:
    """A glob on a URI: list below the longest prefix without wildcards, match the rest."""
    scheme, _, rest = pattern.partition("://")
    parts = rest.split("/")
    fixed = []
    for p in parts:
        if _MAGIC & set(p):
            break
        fixed.append(p)
    base = open_location(f"{scheme}://{'/'.join(fixed)}")
    depth = len(parts) - len(fixed)
    tail = "/".join(parts[len(fixed):])
    return [f for f in _files_under(base)
            if f.uri.count("/") - base.uri.rstrip("/").count("/") == depth
            and fnmatch.fnmatchcase(f.uri[len(base.uri.rstrip("/")) + 1:], tail)]


def expand_inputs(inputs: list[str]) -> tuple[list[Location], list[str]]:
    """Every input file, in order (directories and globs sorted), and the inputs that matched
    nothing (each as a message)."""
    import pyarrow.fs as pafs

    files: list[Location] = []
    missing: list[str] = []
    for raw in inputs:
        text = os.fspath(raw)
        if _MAGIC & set(text):
            found = (_glob_remote(text) if is_uri(text)
                     else [open_location(p) for p in sorted(glob.glob(text, recursive=True)) if os.path.isfile(p)])
            if not found:
                missing.append(f"{text}: no file matches")
            files.extend(found)
            continue
        loc = open_location(text)
        info = loc.fs.get_file_info(loc.path)
        if info.type == pafs.FileType.Directory:
            found = _files_under(loc)
            if not found:
                missing.append(f"{text}: no files in the directory")
            files.extend(found)
        elif info.type == pafs.FileType.File:
            files.append(loc)
        else:
            missing.append(f"{text}: file not found")
    seen: set[str] = set()
    unique = [f for f in files if not (f.uri in seen or seen.add(f.uri))]
    return unique, missing


def load_inputs(inputs: list[str], fmt: str | None = None) -> "LoadResult":
    """Load every input (files, globs, directories, URIs) as `audit trace` loads files: the
    trajectories, the raw spans and every issue (file:line, naming the input as given)."""
    from auditor.collectors.issues import LoadIssue, LoadResult
    from auditor.collectors.loading import load_path

    files, missing = expand_inputs(inputs)
    total = LoadResult(format=fmt or "mixed")
    for text in missing:
        where, _, message = text.rpartition(": ")
        total.issues.append(LoadIssue(where, message))
    with tempfile.TemporaryDirectory(prefix="auditor-inputs-") as tmp:
        for k, loc in enumerate(files):
            if loc.local:
                total.extend(load_path(loc.path, fmt))
                continue
            # the loaders read local files and sniff the format from the name: keep the name
            local = Path(tmp) / str(k) / PurePosixPath(loc.path).name
            local.parent.mkdir(parents=True)
            with loc.fs.open_input_stream(loc.path) as src, local.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            result = load_path(local, fmt)
            result.issues = [dataclasses.replace(i, file=loc.uri) if i.file == str(local) else i
                             for i in result.issues]
            total.extend(result)
    return total
