"""ArtifactStore: the data dir's files (run folders, checkpoints, uploads, latency tables, exports), mirrored to
one storage URL so that no worker needs the API's disk.

Without a URL (the embedded default) the data dir is the store and every method does nothing. With
`NAS_STORAGE_URL` (any fsspec URL: `s3://bucket/prefix` for S3-compatible object storage, with the usual
AWS_* variables such as AWS_ENDPOINT_URL; `file:///shared/nas`; ...) every machine keeps its own copy of the
data dir at the same path; a file's key is its path relative to it. Writers push what they write, readers
pull what they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fsspec.core import url_to_fs


class ArtifactStore:
    def __init__(self, url: str | None, root: Path):
        self.url, self.root = url, Path(root)
        self.fs: Any = None
        self.base = ""
        if url:
            self.fs, self.base = url_to_fs(url)
        self._pushed: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) last pushed

    @property
    def remote(self) -> bool:
        return self.fs is not None

    def key(self, path: str | Path) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def local(self, key: str) -> Path:
        return self.root / key

    def _remote(self, key: str) -> str:
        return f"{self.base.rstrip('/')}/{key}"

    def remote_path(self, path: str | Path) -> str:
        """Where a file of the root lives in the store (a path of `fs`, without the protocol)."""
        return self._remote(self.key(path))

    def push(self, path: str | Path) -> None:
        """Upload a file of the root (if it changed since this store last pushed it)."""
        if not self.remote:
            return
        path = Path(path)
        stat = path.stat()
        key = self.key(path)
        if self._pushed.get(key) == (stat.st_size, stat.st_mtime_ns):
            return
        self.fs.put_file(str(path), self._remote(key))
        self._pushed[key] = (stat.st_size, stat.st_mtime_ns)

    def pull(self, path: str | Path, refresh: bool = False) -> Path:
        """The local copy of a file of the root, downloaded unless it is already there (or `refresh`); a file the
        store lacks stays absent."""
        path = Path(path)
        if not self.remote or (path.exists() and not refresh):
            return path
        remote = self._remote(self.key(path))
        self.fs.invalidate_cache()  # another machine may have written it since this process last looked
        if self.fs.exists(remote):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.pull")
            self.fs.get_file(remote, str(tmp))
            os.replace(tmp, path)
        return path

    def push_tree(self, folder: str | Path) -> None:
        """Upload every file under `folder` that changed since the last push (temporary files excluded)."""
        if not self.remote or not Path(folder).exists():
            return
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                self.push(path)

    def pull_tree(self, folder: str | Path) -> None:
        """Download every file the store holds under `folder` that is not here yet."""
        if not self.remote:
            return
        remote = self._remote(self.key(folder))
        self.fs.invalidate_cache()
        if not self.fs.exists(remote):
            return
        prefix = self.base.rstrip("/") + "/"
        for name in self.fs.find(remote):  # paths without the protocol, like `base`
            self.pull(self.local(name[len(prefix):]))

    def delete(self, path: str | Path) -> None:
        """Remove a file or folder of the root from the store."""
        if self.remote and self.fs.exists(remote := self._remote(self.key(path))):
            self.fs.rm(remote, recursive=True)

