"""crawler/sites/fields.py: site_link's quick path for plain absolute paths gives what
joining the link on its base (urljoin, joined_link) gives, for every base and link form."""

from __future__ import annotations

import pytest

from crawler.sites.fields import joined_link, site_link

HOSTS = ("www.royalroad.com", "royalroad.com")
BASES = (
    "http://127.0.0.1:8080/fiction/1003/some-fiction",
    "https://www.royalroad.com/fiction/1003",
    "https://user:pw@www.royalroad.com/fiction/1003?x=1#top",
    "HTTPS://WWW.RoyalRoad.com/fiction/1003",
    "http://127.0.0.1:99999/fiction/1",  # a port out of range: no URL
    "ftp://www.royalroad.com/fiction/1",
    "http://[abc/fiction/1",
    "/fiction/1",  # no scheme, no host
)
LINKS = (
    "/fiction/1003/some-fiction/chapter/1103919/1-chapter",
    "  /fiction/1003/x/chapter/2/  ",
    "/fiction/1003/x/chapter/2/../3",
    "/fiction/./1003",
    "/fiction//1003",
    "/fiction/%31%32/chapter/3",
    "/fiction/1003?page=2",
    "/fiction/1003#comments",
    "//evil.example/fiction/1",
    "\\fiction\\1",
    "chapter/3",
    "https://www.royalroad.com/fiction/1003/x/chapter/4/y",
    "https://evil.example/fiction/1",
    "javascript:alert(1)",
    "/",
    "",
)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("link", LINKS)
def test_site_link_is_the_link_joined_on_its_base(base: str, link: str) -> None:
    assert site_link(base, link, hosts=HOSTS) == joined_link(base, link, hosts=HOSTS)


def test_a_plain_chapter_path_is_rebased_on_the_fiction_s_origin() -> None:
    url = site_link("http://127.0.0.1:8080/fiction/1", "/fiction/1/x/chapter/2/y", hosts=HOSTS)
    assert url == "http://127.0.0.1:8080/fiction/1/x/chapter/2/y"
