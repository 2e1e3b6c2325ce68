"""Where inputs come from: a local path or an http(s)/ftp URL, downloaded with a checksum."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import DownloadError, InputError

URL_SCHEMES = ("http", "https", "ftp")
#: progress(stage, done, total) — total is None when unknown.
Progress = Callable[[str, int, int | None], None]


@dataclass
class LocalSource:
    """An input ready to read locally."""

    source: str  # what the user gave (path or URL)
    path: Path
    sha256: str | None = None  # known after a download; computed while reading otherwise
    size: int = 0

    def record(self, sha256: str | None = None) -> dict:
        return {"source": self.source, "sha256": sha256 or self.sha256, "size": self.size}


def is_url(src: str) -> bool:
    return urlparse(src).scheme.lower() in URL_SCHEMES


def fetch_source(
    src: str, workdir: Path, *, progress: Progress | None = None, timeout: float = 60.0
) -> LocalSource:
    """Return a local file for ``src``, downloading URLs into ``workdir`` with a progress bar."""
    if not is_url(src):
        path = Path(src).expanduser()
        if not path.exists():
            raise InputError(f"no such file: {src}")
        if path.is_dir():
            raise InputError(f"{src} is a directory, not a file")
        return LocalSource(str(path.resolve()), path, size=path.stat().st_size)
    name = os.path.basename(urlparse(src).path) or "download"
    dest = Path(tempfile.mkdtemp(dir=workdir)) / name  # two URLs may end in the same name
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(src, timeout=timeout) as resp, open(dest, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(f"download {name}", done, total)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download {src}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {src}: {reason}") from None
    if total is not None and done != total:
        raise DownloadError(f"cannot download {src}: got {done:,} of {total:,} bytes")
    return LocalSource(src, dest, sha256=digest.hexdigest(), size=done)
