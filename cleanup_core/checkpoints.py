"""Checkpoint files: where a portal's checkpoint lives, what it proves, and writing it safely.

A portal's checkpoint is ``<checkpoint_dir>/<slug>.json``. Its content is a JSON object with a
``tenders`` list (optionally ``run_id``, ``cursor`` and ``updated_at``) or a bare JSON list of
tenders. Inspection reads at most ``max_bytes`` and never follows a path out of the folder; any file
it cannot read with certainty is reported as a problem, which keeps the run from being judged dead.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanup_core.numbers import whole_number
from cleanup_core.records import StoredCheckpoint
from cleanup_core.vocabulary import CheckpointSource

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_MAX_SLUG = 100

# What unchanged files proved, keyed by path, inode, size and mtime: a pre-scrape check or a
# scan does not re-parse a large checkpoint that nobody rewrote.
_CACHE_SIZE = 512
_cache: OrderedDict[tuple[object, ...], CheckpointInfo] = OrderedDict()
_cache_lock = threading.Lock()


def portal_slug(portal_name: str) -> str:
    """``"Assam Tenders"`` -> ``assam_tenders``; ``"../../etc"`` -> ``etc``.

    Names with no ASCII letters or digits (e.g. Devanagari) get ``portal_<hash>`` so they neither
    collide nor vanish; very long names are shortened and made unique with a hash suffix.
    """
    slug = _NOT_SLUG.sub("_", portal_name.lower()).strip("_")
    if not portal_name:
        return ""
    digest = hashlib.sha256(portal_name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    if not slug:
        return f"portal_{digest}"
    if len(slug) > _MAX_SLUG:
        return f"{slug[: _MAX_SLUG - 13].rstrip('_')}_{digest}"
    return slug


def checkpoint_path(checkpoint_dir: Path, portal_name: str) -> Path | None:
    """Where the portal's checkpoint lives; ``None`` when the name gives no usable file name."""
    slug = portal_slug(portal_name)
    return checkpoint_dir / f"{slug}.json" if slug else None


class CheckpointStatus(enum.StrEnum):
    MISSING = "missing"
    OK = "ok"
    CORRUPT = "corrupt"  # not valid JSON (or not UTF-8)
    UNRECOGNISED = "unrecognised"  # valid JSON, but not the checkpoint format
    OVERSIZED = "oversized"  # larger than the configured limit; not read
    UNREADABLE = "unreadable"  # permissions, not a regular file, I/O error
    UNSAFE = "unsafe"  # a link pointing outside the checkpoint folder; not read

    @property
    def is_problem(self) -> bool:
        """The file exists but we cannot tell what it holds."""
        return self._value_ not in _FINE


_FINE = frozenset({"missing", "ok"})


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint file proves, without its tenders."""

    path: Path | None
    status: CheckpointStatus
    tender_count: int = 0
    run_id: int | None = None
    cursor: Any = None
    updated_at: str | None = None
    size_bytes: int | None = None
    detail: str = ""
    source: CheckpointSource = CheckpointSource.FILE
    cursor_changed_at: object = None  # database checkpoints: when the cursor last moved (raw)

    @property
    def shown_source(self) -> str | None:
        """Where the evidence came from, or ``None`` when there is none (no row, no file)."""
        return None if self.status is CheckpointStatus.MISSING else self.source.value

    @property
    def has_data(self) -> bool:
        return self.status is CheckpointStatus.OK and self.tender_count > 0

    def names_other_run(self, run_id: int) -> bool:
        return self.run_id is not None and self.run_id != run_id

    def is_evidence_for(self, run_id: int) -> bool:
        """Tender data that belongs to this run (or to no run in particular)."""
        return self.has_data and not self.names_other_run(run_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path else None,
            "status": self.status.value,
            "tender_count": self.tender_count,
            "run_id": self.run_id,
            "updated_at": self.updated_at,
            "size_bytes": self.size_bytes,
            "detail": self.detail,
            "source": self.shown_source,
        }


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's full content, for a scraper that resumes from it."""

    info: CheckpointInfo
    tenders: list[Any]
    cursor: Any


def canonical_json(value: Any) -> str:
    """The one text of a JSON value (sorted keys, no spaces, ASCII): equal cursors compare
    equal, and any string (even a lone surrogate) can be stored."""
    return json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":"))


def stored_checkpoint_info(stored: StoredCheckpoint) -> CheckpointInfo:
    """What a run's checkpoint row in the database proves (``source`` database)."""
    where = CheckpointSource.DATABASE
    size = len(stored.cursor or "") + len(stored.tender_ids or "")
    try:
        cursor = json.loads(stored.cursor) if stored.cursor is not None else None
    except (ValueError, RecursionError, TypeError) as exc:
        return CheckpointInfo(
            None,
            CheckpointStatus.CORRUPT,
            run_id=stored.run_id,
            size_bytes=size,
            detail=f"stored cursor is not valid JSON: {str(exc)[:200]}",
            source=where,
        )
    count = _stored_count(stored.tender_count)
    if count is None:
        return CheckpointInfo(
            None,
            CheckpointStatus.UNRECOGNISED,
            run_id=stored.run_id,
            size_bytes=size,
            detail=f"stored tender count is not a count: {str(stored.tender_count)[:40]!r}",
            source=where,
        )
    return CheckpointInfo(
        None,
        CheckpointStatus.OK,
        tender_count=count,
        run_id=stored.run_id,
        cursor=cursor,
        updated_at=_stored_time(stored.updated_at),
        size_bytes=size,
        source=where,
        cursor_changed_at=stored.cursor_changed_at,
    )


def stored_tender_ids(stored: StoredCheckpoint) -> list[str]:
    """The tender ids a database checkpoint lists (none when only their count was kept)."""
    if stored.tender_ids is None:
        return []
    try:
        ids = json.loads(stored.tender_ids)
    except (ValueError, RecursionError, TypeError):
        return []
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def _stored_count(value: object) -> int | None:
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    return whole_number(value)


def _stored_time(value: object) -> str | None:
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def inspect_checkpoint(checkpoint_dir: Path, portal_name: str, *, max_bytes: int) -> CheckpointInfo:
    """What the portal's checkpoint holds (cached while the file is unchanged)."""
    path = checkpoint_path(checkpoint_dir, portal_name)
    if path is None:
        return CheckpointInfo(None, CheckpointStatus.MISSING, detail="portal name is empty")
    located = _locate(checkpoint_dir, path)
    if isinstance(located, CheckpointInfo):
        return located
    real, st = located
    key = (str(path), str(real), st.st_ino, st.st_size, st.st_mtime_ns, max_bytes)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    info = _read(path, real, st.st_size, max_bytes).info
    if info.status is not CheckpointStatus.UNREADABLE:  # I/O errors may pass; content won't
        with _cache_lock:
            _cache[key] = info
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return info


def read_checkpoint(checkpoint_dir: Path, portal_name: str, *, max_bytes: int) -> Checkpoint:
    """The portal's checkpoint with its tenders; an empty one when missing or unusable."""
    path = checkpoint_path(checkpoint_dir, portal_name)
    if path is None:
        info = CheckpointInfo(None, CheckpointStatus.MISSING, detail="portal name is empty")
        return Checkpoint(info, [], None)
    located = _locate(checkpoint_dir, path)
    if isinstance(located, CheckpointInfo):
        return Checkpoint(located, [], None)
    real, st = located
    return _read(path, real, st.st_size, max_bytes)


def _locate(checkpoint_dir: Path, path: Path) -> CheckpointInfo | tuple[Path, os.stat_result]:
    """The file's real path and stat, or the reason it must not or cannot be read."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return CheckpointInfo(path, CheckpointStatus.MISSING)
    except OSError as exc:
        return CheckpointInfo(path, CheckpointStatus.UNREADABLE, detail=_oserror(exc))
    real = path
    if stat.S_ISLNK(st.st_mode):
        real = Path(os.path.realpath(path))
        folder = Path(os.path.realpath(checkpoint_dir))
        if not real.is_relative_to(folder):
            return CheckpointInfo(
                path, CheckpointStatus.UNSAFE, detail=f"link points outside {folder}: not read"
            )
        try:
            st = os.stat(real)
        except OSError as exc:
            return CheckpointInfo(path, CheckpointStatus.UNREADABLE, detail=_oserror(exc))
    if not stat.S_ISREG(st.st_mode):
        return CheckpointInfo(path, CheckpointStatus.UNREADABLE, detail="not a regular file")
    return real, st


def _read(path: Path, real: Path, size: int, max_bytes: int) -> Checkpoint:
    if size > max_bytes:
        info = CheckpointInfo(
            path,
            CheckpointStatus.OVERSIZED,
            size_bytes=size,
            detail=f"{size:,} bytes is over the {max_bytes:,}-byte limit; not read",
        )
        return Checkpoint(info, [], None)
    try:
        fd = os.open(
            real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                info = CheckpointInfo(
                    path, CheckpointStatus.UNREADABLE, detail="not a regular file"
                )
                return Checkpoint(info, [], None)
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        info = CheckpointInfo(path, CheckpointStatus.UNREADABLE, detail=_oserror(exc))
        return Checkpoint(info, [], None)
    if len(raw) > max_bytes:
        info = CheckpointInfo(
            path, CheckpointStatus.OVERSIZED, size_bytes=len(raw), detail="grew past the limit"
        )
        return Checkpoint(info, [], None)
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = f"not valid JSON: {str(exc)[:200]}"
        return Checkpoint(
            CheckpointInfo(path, CheckpointStatus.CORRUPT, size_bytes=len(raw), detail=detail),
            [],
            None,
        )
    return _interpret(path, data, len(raw))


def _interpret(path: Path, data: Any, size: int) -> Checkpoint:
    def unrecognised(why: str) -> Checkpoint:
        info = CheckpointInfo(path, CheckpointStatus.UNRECOGNISED, size_bytes=size, detail=why)
        return Checkpoint(info, [], None)

    if isinstance(data, list):
        tenders, run_id, cursor, updated_at = data, None, None, None
    elif isinstance(data, dict):
        listed = data.get("tenders")
        if not isinstance(listed, list):
            return unrecognised("no 'tenders' list in the JSON object")
        tenders = listed
        run_id = data.get("run_id")
        if run_id is not None:
            run_id = _as_run_id(run_id)
            if run_id is None:
                return unrecognised(f"'run_id' is not a run id: {str(data.get('run_id'))[:40]!r}")
        cursor = data.get("cursor")
        updated = data.get("updated_at")
        updated_at = updated if isinstance(updated, str) else None
    else:
        return unrecognised(f"expected a JSON object or list, found {type(data).__name__}")
    info = CheckpointInfo(
        path,
        CheckpointStatus.OK,
        tender_count=len(tenders),
        run_id=run_id,
        cursor=cursor,
        updated_at=updated_at,
        size_bytes=size,
    )
    return Checkpoint(info, tenders, cursor)


def _as_run_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    number = whole_number(value)
    return number if number else None


def _oserror(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def write_checkpoint(
    checkpoint_dir: Path,
    portal_name: str,
    *,
    tenders: list[Any],
    run_id: int | None = None,
    cursor: Any = None,
    updated_at: str | None = None,
) -> Path:
    """Replace the portal's checkpoint atomically: readers see the old file or the new one,
    never a torn one, even if the process dies mid-write (temp file + fsync + rename)."""
    path = checkpoint_path(checkpoint_dir, portal_name)
    if path is None:
        raise ValueError("a checkpoint needs a non-empty portal name")
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    content = {
        "run_id": run_id,
        "portal_name": portal_name,
        "updated_at": updated_at,
        "cursor": cursor,
        "tenders": tenders,
    }
    fd, tmp_name = tempfile.mkstemp(dir=checkpoint_dir, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(content, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(checkpoint_dir)
    return path


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform (Windows); the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
