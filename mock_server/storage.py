"""The mock's file store: uploads from both clients' flows, and the files jobs produce.

Plain Python (no web framework). Files are content-addressed so that the same bytes stored for
many jobs (the placeholder video) are kept once; their bytes live in memory, or on disk under a
state directory (:mod:`mock_server.persistence` gives the store other :class:`Blobs`). A file
becomes visible only when its bytes are complete: an upload that stops half-way leaves nothing.

Files do not live forever (:mod:`mock_server.engine.retention`): a file a request holds (its
output) goes when the request is forgotten; any other (uploads, sync-run outputs) goes once it
is older than the file retention.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

FILE_REF_SCHEME: Final = "fal-mock-file://"
"""How a stored file is referred to inside job outputs; rendered to a real URL per request,
so each URL points back the way the request came in."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class StorageError(Exception):
    """An upload that cannot proceed; ``status_code`` says how to answer it."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def safe_file_name(name: str | None, default: str = "upload.bin") -> str:
    """A name that is safe in a URL path segment: no slashes, no traversal, not empty."""
    cleaned = _SAFE_NAME.sub("_", (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    cleaned = cleaned.strip("._") or default
    return cleaned[:200]


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    file_name: str
    content_type: str
    size: int
    digest: str

    @property
    def ref(self) -> str:
        return f"{FILE_REF_SCHEME}{self.file_id}/{self.file_name}"

    @property
    def etag(self) -> str:
        return f'"{self.digest[:32]}"'

    def as_file(self) -> dict[str, str | int]:
        """fal's ``File`` for this file, its URL as the internal ref (rendered per request)."""
        return {
            "url": self.ref,
            "content_type": self.content_type,
            "file_name": self.file_name,
            "file_size": self.size,
        }


@dataclass(slots=True)
class PendingUpload:
    """An upload reserved by an initiate call (or a multipart start) whose bytes are not in."""

    upload_id: str
    file_id: str
    file_name: str
    content_type: str
    multipart: bool
    parts: dict[int, bytes] = field(default_factory=dict)
    reserved_at: float = 0.0


MAX_PENDING_UPLOADS = 1_000
"""Uploads begun and not finished that are kept; past it the oldest is forgotten (its upload
URL then answers 404, as an expired presigned URL would), so abandoned uploads stay bounded."""


class Blobs(Protocol):
    """Where a store's bytes live, told of every change to its files as it happens."""

    def save(self, stored: StoredFile, stored_at: float, data: bytes, new_blob: bool) -> None:
        """Keep ``stored`` (and ``data`` when ``new_blob``: no other file has these bytes)."""
        ...

    def load(self, digest: str) -> bytes: ...

    def dropped(self, files: list[StoredFile], digests: list[str]) -> None:
        """The files are forgotten; no file uses the bytes of ``digests`` any more."""
        ...


class MemoryBlobs:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def save(self, stored: StoredFile, stored_at: float, data: bytes, new_blob: bool) -> None:
        if new_blob:
            self._blobs[stored.digest] = data

    def load(self, digest: str) -> bytes:
        return self._blobs[digest]

    def dropped(self, files: list[StoredFile], digests: list[str]) -> None:
        for digest in digests:
            self._blobs.pop(digest, None)


def _no_clock() -> float:
    return 0.0


class FileStore:
    def __init__(
        self,
        new_id: Callable[[], str],
        max_file_bytes: int,
        now: Callable[[], float] = _no_clock,
        blobs: Blobs | None = None,
    ) -> None:
        self._new_id = new_id
        self.max_file_bytes = max_file_bytes
        self._now = now
        self.blobs: Blobs = blobs or MemoryBlobs()
        self._files: dict[str, StoredFile] = {}
        self._uses: dict[str, int] = {}  # digest -> files with those bytes
        self._ages: deque[tuple[float, str]] = deque()  # (stored at, file id), oldest first
        self._holder: dict[str, str] = {}  # file id -> the request holding it
        self._holdings: dict[str, list[str]] = {}  # request id -> the files it holds
        self._pending: dict[str, PendingUpload] = {}
        self._last_hashed: tuple[bytes, str] = (b"", hashlib.sha256(b"").hexdigest())

    # -- stored files -------------------------------------------------------------------

    def put(self, data: bytes, content_type: str, file_name: str | None) -> StoredFile:
        return self._store(self._new_id(), data, content_type, safe_file_name(file_name))

    def get(self, file_id: str) -> tuple[StoredFile, bytes] | None:
        stored = self._files.get(file_id)
        if stored is None:
            return None
        return stored, self.blobs.load(stored.digest)

    def lookup_ref(self, url: str) -> StoredFile | None:
        """The stored file a mock file URL (any origin) or internal ref names, if any."""
        match = re.search(r"/files/([0-9a-f]{8,64})/[^/?#]+$", url) or re.match(
            re.escape(FILE_REF_SCHEME) + r"([0-9a-f]{8,64})/", url
        )
        return self._files.get(match.group(1)) if match else None

    def __len__(self) -> int:
        return len(self._files)

    # -- how long files live (mock_server/engine/retention.py decides when) ---------------

    def hold(self, file_id: str, owner: str) -> None:
        """Tie a file to a request (its output): it goes when ``release(owner)`` is called,
        not by age."""
        if file_id in self._files and file_id not in self._holder:
            self._holder[file_id] = owner
            self._holdings.setdefault(owner, []).append(file_id)

    def release(self, owners: Iterable[str]) -> None:
        """Forget the files these requests hold."""
        self._drop([f for owner in owners for f in self._holdings.pop(owner, ())])

    def expire(self, stored_by: float) -> None:
        """Forget the files no request holds that were stored at ``stored_by`` or before, and
        the uploads begun by then and never finished."""
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.reserved_at > stored_by:
                break
            del self._pending[oldest.upload_id]
        expired = []
        while self._ages and self._ages[0][0] <= stored_by:
            file_id = self._ages.popleft()[1]
            if file_id not in self._holder:
                expired.append(file_id)
        self._drop(expired)

    def restore(self, files: Iterable[tuple[StoredFile, float]]) -> None:
        """Take up files kept from an earlier run, (file, stored at) oldest first; their
        holders are told again with ``hold``."""
        for stored, stored_at in files:
            self._add(stored, stored_at)

    # -- uploads in steps ---------------------------------------------------------------

    def reserve(
        self, content_type: str, file_name: str | None, *, multipart: bool
    ) -> PendingUpload:
        pending = PendingUpload(
            upload_id=self._new_id(),
            file_id=self._new_id(),
            file_name=safe_file_name(file_name),
            content_type=content_type or "application/octet-stream",
            multipart=multipart,
            reserved_at=self._now(),
        )
        self._pending[pending.upload_id] = pending
        while len(self._pending) > MAX_PENDING_UPLOADS:
            del self._pending[next(iter(self._pending))]
        return pending

    def pending(self, upload_id: str) -> PendingUpload:
        pending = self._pending.get(upload_id)
        if pending is None:
            raise StorageError(404, f"No upload in progress with id {upload_id!r}")
        return pending

    def finish_single(self, upload_id: str, data: bytes, content_type: str | None) -> StoredFile:
        pending = self.pending(upload_id)
        if pending.multipart:
            raise StorageError(409, "This upload was initiated as multipart: PUT its parts")
        del self._pending[upload_id]
        return self._store(
            pending.file_id, data, content_type or pending.content_type, pending.file_name
        )

    def put_part(self, upload_id: str, part_number: int, data: bytes) -> str:
        pending = self.pending(upload_id)
        if not pending.multipart:
            raise StorageError(409, "This upload was not initiated as multipart")
        if not 1 <= part_number <= 10_000:
            raise StorageError(422, "partNumber must be between 1 and 10000")
        total = sum(len(p) for n, p in pending.parts.items() if n != part_number) + len(data)
        if total > self.max_file_bytes:
            raise StorageError(413, f"Upload exceeds the limit of {self.max_file_bytes} bytes")
        pending.parts[part_number] = data
        return part_etag(data)

    def complete_multipart(self, upload_id: str, parts: list[tuple[int, str]]) -> StoredFile:
        pending = self.pending(upload_id)
        if not pending.multipart:
            raise StorageError(409, "This upload was not initiated as multipart")
        numbers = [n for n, _ in parts]
        if sorted(set(numbers)) != sorted(numbers):
            raise StorageError(400, "Each partNumber may be listed once")
        for number, etag in parts:
            data = pending.parts.get(number)
            if data is None:
                raise StorageError(400, f"Part {number} was never uploaded")
            if etag.strip('"') != part_etag(data).strip('"'):
                raise StorageError(400, f"Part {number}: etag {etag!r} does not match")
        data = b"".join(pending.parts[n] for n in sorted(numbers))
        del self._pending[upload_id]
        return self._store(pending.file_id, data, pending.content_type, pending.file_name)

    # -- internals ----------------------------------------------------------------------

    def _store(self, file_id: str, data: bytes, content_type: str, name: str) -> StoredFile:
        if len(data) > self.max_file_bytes:
            raise StorageError(413, f"File exceeds the limit of {self.max_file_bytes} bytes")
        digest = self._digest(data)
        stored = StoredFile(file_id, name, content_type, len(data), digest)
        stored_at = self._now()
        # Saved before it is visible: a state directory has it once the upload is answered.
        self.blobs.save(stored, stored_at, data, new_blob=digest not in self._uses)
        self._add(stored, stored_at)
        return stored

    def _add(self, stored: StoredFile, stored_at: float) -> None:
        self._files[stored.file_id] = stored
        self._uses[stored.digest] = self._uses.get(stored.digest, 0) + 1
        self._ages.append((stored_at, stored.file_id))

    def _drop(self, file_ids: list[str]) -> None:
        files = [stored for f in file_ids if (stored := self._files.pop(f, None)) is not None]
        unused = []
        for stored in files:
            self._holder.pop(stored.file_id, None)
            self._uses[stored.digest] -= 1
            if not self._uses[stored.digest]:
                del self._uses[stored.digest]
                unused.append(stored.digest)
        if files:
            self.blobs.dropped(files, unused)
        if len(self._ages) > 2 * len(self._files) + 1024:
            # Files dropped with their request wait here until they would have aged out;
            # rebuilt once they outnumber the live ones, so memory follows the live files.
            self._ages = deque(entry for entry in self._ages if entry[1] in self._files)

    def _digest(self, data: bytes) -> str:
        # Every job of the placeholder engine stores the very same bytes object: hash it once.
        last, digest = self._last_hashed
        if data is not last:
            digest = hashlib.sha256(data).hexdigest()
            self._last_hashed = (data, digest)
        return digest


def part_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
