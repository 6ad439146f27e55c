from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from gateway.signed_urls import (
    ExpiredUrlError,
    MissingSignatureError,
    SignatureMismatchError,
    UrlSigner,
)

ROUTE = "/data-store/signed"
NOW = 1_800_000_000


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner("the gateway's key", "http://gateway.test:8080/")


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def changed(url: str, **changes: str) -> list[tuple[str, str]]:
    params = dict(query(url))
    params.update(changes)
    return list(params.items())


def test_a_signed_url_is_absolute_and_verifies_to_its_parameters(signer: UrlSigner) -> None:
    url = signer.sign("GET", ROUTE, {"path": "a b/é?&=.csv"}, NOW + 60)

    assert url.startswith(f"http://gateway.test:8080{ROUTE}?")
    params = signer.verify("GET", ROUTE, query(url), NOW)
    assert params == {"path": "a b/é?&=.csv", "expires": str(NOW + 60)}


def test_it_is_good_until_it_expires(signer: UrlSigner) -> None:
    url = signer.sign("GET", ROUTE, {"path": "x"}, NOW)
    assert signer.verify("GET", ROUTE, query(url), NOW)
    with pytest.raises(ExpiredUrlError, match="expired") as raised:
        signer.verify("GET", ROUTE, query(url), NOW + 1)
    assert raised.value.code == "AccessDenied"


@pytest.mark.parametrize(
    "change",
    [
        {"path": "y"},
        {"expires": str(NOW + 10**6)},
        {"part_number": "2"},
        {"upload_id": "other"},
        {"extra": "added"},
    ],
    ids=["path", "expiry", "part", "upload", "added-parameter"],
)
def test_changing_any_parameter_breaks_the_signature(
    signer: UrlSigner, change: dict[str, str]
) -> None:
    url = signer.sign("PUT", ROUTE, {"path": "x", "upload_id": "u", "part_number": "1"}, NOW + 60)
    with pytest.raises(SignatureMismatchError) as raised:
        signer.verify("PUT", ROUTE, changed(url, **change), NOW)
    assert raised.value.code == "SignatureDoesNotMatch"


def test_a_url_is_good_for_its_method_and_route_only(signer: UrlSigner) -> None:
    url = signer.sign("GET", ROUTE, {"path": "x"}, NOW + 60)
    for method in ("POST", "PUT", "DELETE"):
        with pytest.raises(SignatureMismatchError, match=method):
            signer.verify(method, ROUTE, query(url), NOW)
    with pytest.raises(SignatureMismatchError):
        signer.verify("GET", "/another/route", query(url), NOW)


def test_another_key_does_not_verify(signer: UrlSigner) -> None:
    url = signer.sign("GET", ROUTE, {"path": "x"}, NOW + 60)
    other = UrlSigner("another key", "http://gateway.test:8080")
    with pytest.raises(SignatureMismatchError):
        other.verify("GET", ROUTE, query(url), NOW)


@pytest.mark.parametrize(
    "params",
    [[("path", "x")], [("path", "x"), ("expires", str(NOW + 60))], [("signature", "abc")]],
    ids=["nothing", "no-signature", "no-expiry"],
)
def test_an_unsigned_url_is_refused(signer: UrlSigner, params: list[tuple[str, str]]) -> None:
    with pytest.raises(MissingSignatureError) as raised:
        signer.verify("GET", ROUTE, params, NOW)
    assert raised.value.code == "AccessDenied"


def test_a_repeated_parameter_is_refused(signer: UrlSigner) -> None:
    url = signer.sign("GET", ROUTE, {"path": "x"}, NOW + 60)
    with pytest.raises(SignatureMismatchError, match="repeated"):
        signer.verify("GET", ROUTE, [*query(url), ("path", "y")], NOW)


def test_a_non_numeric_expiry_is_refused_even_if_signed(signer: UrlSigner) -> None:
    url = signer.sign("GET", ROUTE, {"path": "x"}, NOW + 60)
    params = dict(query(url))
    assert urlencode(params)
    with pytest.raises(SignatureMismatchError):
        signer.verify("GET", ROUTE, changed(url, expires="soon"), NOW)


def test_the_signer_keeps_its_own_parameters(signer: UrlSigner) -> None:
    with pytest.raises(ValueError, match="signer"):
        signer.sign("GET", ROUTE, {"signature": "mine"}, NOW)
