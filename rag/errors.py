"""One tree of errors. Each knows what it means to a client (HTTP status) and to a shell
(exit code), so the API and the CLI each map them in one place."""

from __future__ import annotations

from typing import ClassVar


class RagError(Exception):
    """Something the caller can act on; the message says what and how."""

    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    headers: ClassVar[dict[str, str]] = {}


class InvalidInput(RagError):
    """A request, document or message that cannot be used as given."""

    status = 422
    exit_code = 2


class QueryError(InvalidInput):
    """A question the service cannot run as given."""


class WriteError(InvalidInput):
    """A write that would leave the index unusable (no document left)."""


class DocumentError(InvalidInput):
    """Input that cannot become a document."""


class UnsupportedFileType(DocumentError):
    """A file whose type (or binary content) we cannot read."""

    status = 415


class ChatError(InvalidInput):
    """Chat messages that hold no question to answer."""


class NotFoundError(RagError):
    """An id that is not in the index."""

    status = 404
    exit_code = 2


class ReadOnly(RagError):
    """A write sent to a replica that only reads (its database is a standby)."""

    status = 403
    exit_code = 2


class Conflict(RagError):
    """A create that would overwrite; the message says to replace instead."""

    status = 409
    exit_code = 2


class Unavailable(RagError):
    """Not now, but soon: the client should retry."""

    status = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class NotReadyError(Unavailable):
    """The index is still loading."""


class Stopped(Unavailable):
    """A shutdown ended an indexing run; nothing of it was published."""


class SetupError(RagError):
    """The installation or the index on disk is not usable; the message names the fix."""

    exit_code = 2


class ReaderError(SetupError):
    """The reader model is missing or not the one the code was built for."""


class IndexStoreError(SetupError):
    """An index on disk that is unreadable, corrupt, or of an unknown format."""


class LocalModelError(SetupError):
    """The local language model cannot be assembled from its parts."""


class GenerationError(RagError):
    """The language model failed; extractive answers stand in."""

    status = 502


class CitationError(RagError):
    """A citation whose offsets do not reproduce its quote: never sent to a user."""
