"""What storage refuses or cannot find.

ValueError
├── InvalidKeyError       a key or prefix that could leave the storage root, or is malformed
├── KeyConflictError      a key whose path is taken by a folder of other keys, or the reverse
└── InvalidPartError      a multipart upload's parts do not match what was uploaded
LookupError
├── ObjectNotFoundError   no object under that key
└── UploadNotFoundError   no multipart upload with that id for that key
ConnectionError
└── StorageUnavailableError  the storage cannot be reached, or refuses the gateway (S3: a wrong
                             bucket, credentials or endpoint); the message names the object
"""

from __future__ import annotations

__all__ = [
    "InvalidKeyError",
    "InvalidPartError",
    "KeyConflictError",
    "ObjectNotFoundError",
    "StorageUnavailableError",
    "UploadNotFoundError",
]


class InvalidKeyError(ValueError):
    pass


class KeyConflictError(ValueError):
    """A local folder cannot hold both ``a`` and ``a/b``, which S3 can."""


class InvalidPartError(ValueError):
    pass


class UploadNotFoundError(LookupError):
    pass


class ObjectNotFoundError(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no stored object {key!r}")
        self.key = key


class StorageUnavailableError(ConnectionError):
    """Not the caller's fault: answered 503, and a step that meets it ends in Error."""
