"""S3's and the network's failures as storage errors, translated where they enter.

A missing object is ObjectNotFoundError; anything else is StorageUnavailableError, whose message
names the object and, where one setting is the likely cause, that setting (``TENDER_S3_*``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from gateway.storage.errors import ObjectNotFoundError, StorageUnavailableError

__all__ = ["MISSING", "NETWORK_ERRORS", "S3Place", "error_code", "storage_error"]

NETWORK_ERRORS = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError)
MISSING = {"NoSuchKey", "404", "NotFound"}
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_WRONG_REGION = {"PermanentRedirect", "301", "AuthorizationHeaderMalformed", "IllegalLocation"}


@dataclass(frozen=True)
class S3Place:
    """Where a failure happened, for its message."""

    bucket: str
    endpoint_url: str
    region: str

    @property
    def where(self) -> str:
        return self.endpoint_url or "AWS"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def storage_error(exc: BaseException, place: S3Place, action: str, key: str | None) -> Exception:
    """The storage error that ``exc``, met while ``action`` (``"reading"``) ``key``, stands for."""
    bucket = place.bucket
    what = f"{key!r} in bucket {bucket!r}" if key else f"bucket {bucket!r}"
    if not isinstance(exc, ClientError):
        return StorageUnavailableError(
            f"TENDER_S3_ENDPOINT_URL: cannot reach S3 at {place.where} while {action} {what}: {exc}"
        )
    code = error_code(exc)
    if code in MISSING and key is not None:
        return ObjectNotFoundError(key)
    if code == "NoSuchBucket" or (code in MISSING and key is None):
        during = f" (while {action} {key!r})" if key else ""
        return StorageUnavailableError(
            f"TENDER_S3_BUCKET: the bucket {bucket!r} does not exist at {place.where}{during}"
        )
    if code in _REFUSED:
        return StorageUnavailableError(
            f"TENDER_S3_ACCESS_KEY_ID, TENDER_S3_SECRET_ACCESS_KEY: S3 refused {action} {what} "
            f"({code})"
        )
    if code in _WRONG_REGION:
        return StorageUnavailableError(
            f"TENDER_S3_REGION: the bucket {bucket!r} is in another region than "
            f"{place.region or 'the default'!r} ({code})"
        )
    message = exc.response.get("Error", {}).get("Message", "")
    return StorageUnavailableError(f"S3 answered {code} while {action} {what}: {message}")
