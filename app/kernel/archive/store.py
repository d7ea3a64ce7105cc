"""Where segments and manifests live: a directory, or an S3-compatible bucket.

Written through `pyarrow.fs`, which comes with pyarrow (already needed for Parquet): one
library for the local disk and S3 (its AWS SDK reads the usual AWS variables; an
S3-compatible server is named by `AWS_ENDPOINT_URL`). Its calls block, so the async code runs
them in a thread (`asyncio.to_thread`). The filesystem is made on first use, so a process
that never touches the archive (the web) never imports pyarrow.

A write is atomic for readers: a file appears whole or not at all (a directory: written
beside, then renamed over; S3: one PUT, visible when complete).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

DEFAULT_REGION = "us-east-1"


class ArchiveStore:
    """Files under one root of one filesystem, named by relative paths (`a/b/c.parquet`)."""

    def __init__(self, make_fs: Callable[[], Any], root: str, url: str, *, local: bool) -> None:
        self._make_fs = make_fs
        self._made: Any = None
        self._root = root.rstrip("/")
        self.url = url
        self.local = local

    @property
    def _fs(self) -> Any:
        if self._made is None:
            self._made = self._make_fs()
        return self._made

    def _full(self, path: str) -> str:
        return f"{self._root}/{path}" if path else self._root

    def write(self, path: str, body: bytes) -> None:
        full = self._full(path)
        if not self.local:
            with self._fs.open_output_stream(full) as out:
                out.write(body)
            return
        self._fs.create_dir(full.rpartition("/")[0], recursive=True)
        temporary = f"{full}.{secrets.token_hex(4)}.tmp"
        with self._fs.open_output_stream(temporary) as out:
            out.write(body)
        self._fs.move(temporary, full)

    def read(self, path: str) -> bytes | None:
        """The file's bytes, None if there is no such file."""
        try:
            with self._fs.open_input_stream(self._full(path)) as source:
                return bytes(source.readall())
        except FileNotFoundError:
            return None

    def files(self, under: str) -> list[str]:
        """Paths of the files under a folder (recursively), sorted; [] if there is none."""
        from pyarrow.fs import FileSelector, FileType

        selector = FileSelector(self._full(under), allow_not_found=True, recursive=True)
        start = len(self._root) + 1
        return sorted(
            info.path[start:]
            for info in self._fs.get_file_info(selector)
            if info.type == FileType.File and not info.path.endswith(".tmp")
        )

    def folders(self, under: str) -> list[str]:
        """Names of the folders right under a folder, sorted."""
        from pyarrow.fs import FileSelector, FileType

        selector = FileSelector(self._full(under), allow_not_found=True)
        return sorted(
            info.base_name
            for info in self._fs.get_file_info(selector)
            if info.type == FileType.Directory
        )

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.delete_file(self._full(path))

    def location(self, path: str = "") -> str:
        """The URL of a path in the store (what DuckDB or pandas would be given)."""
        return f"{self.url.rstrip('/')}/{path}" if path else self.url


def open_store(url: str, env: Mapping[str, str] | None = None) -> ArchiveStore:
    """`var/archive`, `/abs/dir`, `file:///abs/dir` or `s3://bucket/prefix`."""
    env = os.environ if env is None else env
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return _s3_store(parsed.netloc, parsed.path.strip("/"), env)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"ARCHIVE_URL must be a directory, file:// or s3:// URL, not {url!r}")
    directory = Path(parsed.path if parsed.scheme == "file" else url).absolute()
    return ArchiveStore(_local_fs, str(directory), directory.as_uri(), local=True)


def _local_fs() -> Any:
    from pyarrow.fs import LocalFileSystem

    return LocalFileSystem()


def _s3_store(bucket: str, prefix: str, env: Mapping[str, str]) -> ArchiveStore:
    if not bucket:
        raise ValueError("ARCHIVE_URL s3://… names no bucket")
    options: dict[str, object] = {
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint)
        options["endpoint_override"] = parsed.netloc or parsed.path
        options["scheme"] = parsed.scheme or "https"
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options["access_key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            options["session_token"] = env["AWS_SESSION_TOKEN"]

    def s3_fs() -> Any:
        from pyarrow.fs import S3FileSystem

        return S3FileSystem(**options)

    root = f"{bucket}/{prefix}" if prefix else bucket
    return ArchiveStore(s3_fs, root, f"s3://{root}", local=False)
