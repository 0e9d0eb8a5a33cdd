from __future__ import annotations

import pytest

from domain.errors import DigestInvalidError, NameInvalidError, TagInvalidError
from domain.names import check_digest, check_name, check_tag, parse_digest


@pytest.mark.parametrize("name", ["app", "team/app", "team/sub/app", "a.b_c__d-e--f/x9", "a" * 255])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", [
    "", "../x", "UPPER/case", "team//app", "/app", "app/", "-app", "app-", "a" * 256, "a..b",
    "team/../app", "a___b", "app:tag",
])
def test_invalid_names(name):
    with pytest.raises(NameInvalidError):
        check_name(name)


@pytest.mark.parametrize("tag", ["latest", "1.0", "v1.2.3-rc_1", "_x", "A" * 128])
def test_valid_tags(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-x", "a" * 129, "a/b", "a:b", "sp ace"])
def test_invalid_tags(tag):
    with pytest.raises(TagInvalidError):
        check_tag(tag)


def test_digest_parsing():
    digest = "sha256:" + "a" * 64
    assert check_digest(digest) == digest
    assert parse_digest("sha512:" + "0" * 128).algorithm == "sha512"


@pytest.mark.parametrize("digest", [
    "sha256:" + "a" * 63, "sha256:" + "A" * 64, "sha256" + "a" * 64, "md5:" + "a" * 32,
    "sha256:" + "g" * 64, "", "sha256:",
])
def test_invalid_digests(digest):
    with pytest.raises(DigestInvalidError):
        parse_digest(digest)
