"""URLs that carry their own authorization: HMAC-signed, expiring, bound to one method.

The embedded data store hands these out the way S3 hands out presigned URLs: whoever holds one
may do exactly one thing (``GET`` an object, ``POST`` or ``PUT`` one) until it expires, without
an access token (the SDK sends none to them, craft-api.md section 1.2). Every query parameter
but ``signature`` is signed together with the method, so that changing the path, the part
number, the expiry or the method breaks the signature. S3 signs its own URLs: this module is the
embedded storage's counterpart, not part of the storage interface.

    SignedUrlError               403, the base (``code`` is S3's word for it)
    ├── MissingSignatureError    AccessDenied: not a signed URL
    ├── SignatureMismatchError   SignatureDoesNotMatch: tampered with, or another method
    └── ExpiredUrlError          AccessDenied: past its expiry
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote, urlencode

__all__ = [
    "ExpiredUrlError",
    "MissingSignatureError",
    "SignatureMismatchError",
    "SignedUrlError",
    "UrlSigner",
]

_EXPIRES = "expires"
_SIGNATURE = "signature"
# Derived from the access-token key, so that neither kind of signature can stand for the other.
_PURPOSE = b"tender signed urls v1"


class SignedUrlError(Exception):
    code = "AccessDenied"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingSignatureError(SignedUrlError):
    pass


class SignatureMismatchError(SignedUrlError):
    code = "SignatureDoesNotMatch"


class ExpiredUrlError(SignedUrlError):
    pass


class UrlSigner:
    """Signs and checks the query strings of URLs under ``base_url`` (absolute, no slash at
    the end)."""

    def __init__(self, signing_key: str, base_url: str) -> None:
        self._key = hmac.new(signing_key.encode(), _PURPOSE, hashlib.sha256).digest()
        self._base_url = base_url.rstrip("/")

    def sign(self, method: str, route: str, params: Mapping[str, str], expires_at: int) -> str:
        """The absolute URL of ``route`` with ``params``, good for ``method`` until
        ``expires_at`` (seconds since the epoch)."""
        if _EXPIRES in params or _SIGNATURE in params:
            raise ValueError(f"{_EXPIRES!r} and {_SIGNATURE!r} are the signer's parameters")
        signed = {**params, _EXPIRES: str(expires_at)}
        signed[_SIGNATURE] = self._signature(method, route, signed)
        return f"{self._base_url}{route}?{urlencode(signed, quote_via=quote)}"

    def verify(
        self, method: str, route: str, query: list[tuple[str, str]], now: float
    ) -> dict[str, str]:
        """The signed parameters of a request to ``route`` (``expires`` included), once the
        signature matches and has not expired; raises SignedUrlError otherwise."""
        params = dict(query)
        if len(params) != len(query):
            raise SignatureMismatchError("a query parameter is repeated")
        signature = params.pop(_SIGNATURE, None)
        expires = params.get(_EXPIRES)
        if not signature or not expires:
            raise MissingSignatureError(
                f"this URL needs the {_EXPIRES!r} and {_SIGNATURE!r} query parameters of a "
                "signed URL"
            )
        expected = self._signature(method, route, params)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignatureMismatchError(
                "the request signature does not match: the URL was changed, or it was signed "
                f"for another method than {method}"
            )
        if not expires.isdigit() or int(expires) < now:
            raise ExpiredUrlError("request has expired: ask the data store for a new URL")
        return params

    def _signature(self, method: str, route: str, params: Mapping[str, str]) -> str:
        canonical = "\n".join(
            [method.upper(), route, *(f"{quote(k)}={quote(v)}" for k, v in sorted(params.items()))]
        )
        digest = hmac.new(self._key, canonical.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
