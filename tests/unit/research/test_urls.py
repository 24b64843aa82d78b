"""normalize_url, arxiv_id_from_url and doi_from_text: the identifiers dedupe relies on."""

from __future__ import annotations

import pytest

from ponder_research.urls import arxiv_id_from_url, doi_from_text, normalize_url


class TestNormalizeUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://example.com/a/b", "example.com/a/b"),
            ("http://example.com/a/b", "example.com/a/b"),
            ("https://www.example.com/a", "example.com/a"),
            ("https://WWW.Example.COM/Path", "example.com/Path"),
            ("https://example.com/a/b/", "example.com/a/b"),
            ("https://example.com/", "example.com"),
            ("  https://example.com/a  ", "example.com/a"),
            ("https://example.com/a#section-2", "example.com/a"),
            ("https://example.com/a?utm_source=x&utm_medium=mail&utm_campaign=c", "example.com/a"),
            ("https://example.com/a?fbclid=IwAR0abc", "example.com/a"),
            ("https://example.com/a?gclid=xyz&id=7", "example.com/a?id=7"),
            ("https://example.com/a?b=2&a=1", "example.com/a?a=1&b=2"),
            ("https://example.com/a?UTM_Source=x&page=3", "example.com/a?page=3"),
            ("https://example.com:8080/a", "example.com:8080/a"),
            ("https://arxiv.org/abs/2005.11401", "arxiv.org/abs/2005.11401"),
            ("http://arxiv.org/abs/2005.11401v4", "arxiv.org/abs/2005.11401"),
            ("https://arxiv.org/pdf/2005.11401", "arxiv.org/abs/2005.11401"),
            ("https://arxiv.org/pdf/2005.11401v2", "arxiv.org/abs/2005.11401"),
            ("https://arxiv.org/pdf/2005.11401v2.pdf", "arxiv.org/abs/2005.11401"),
            ("https://www.arxiv.org/html/2005.11401v1#S2", "arxiv.org/abs/2005.11401"),
            ("https://export.arxiv.org/abs/2005.11401?context=cs", "arxiv.org/abs/2005.11401"),
            ("https://arxiv.org/abs/1706.0376", "arxiv.org/abs/1706.0376"),
            ("https://arxiv.org/abs/hep-th/9901001v2", "arxiv.org/abs/hep-th/9901001"),
            ("https://arxiv.org/abs/math.GT/0309136", "arxiv.org/abs/math.GT/0309136"),
        ],
    )
    def test_table(self, url: str, expected: str) -> None:
        """Scheme, www., trailing slash, fragment and tracking parameters go; arXiv abs/pdf/html
        URLs, versioned or not, become arxiv.org/abs/<id>."""
        assert normalize_url(url) == expected

    def test_same_page_variants_are_equal(self) -> None:
        """Every spelling of one page normalises to the same string."""
        variants = [
            "https://www.example.com/post/",
            "http://example.com/post",
            "https://EXAMPLE.com/post?utm_source=newsletter",
            "https://example.com/post/#comments",
            "https://example.com/post?fbclid=abc&utm_medium=social",
        ]
        assert {normalize_url(url) for url in variants} == {"example.com/post"}

    def test_different_pages_differ(self) -> None:
        """Paths, hosts and meaningful query parameters keep pages apart."""
        urls = [
            "https://example.com/post",
            "https://example.com/post/2",
            "https://example.org/post",
            "https://example.com/post?id=1",
            "https://example.com/post?id=2",
            "https://arxiv.org/abs/2005.11401",
            "https://arxiv.org/abs/2005.11402",
        ]
        assert len({normalize_url(url) for url in urls}) == len(urls)

    def test_parameters_merely_starting_with_ref_are_kept(self) -> None:
        """Only tracking parameters go: `reference=1` and `reference=2` are different pages."""
        assert normalize_url("https://example.com/item?reference=1") != normalize_url(
            "https://example.com/item?reference=2"
        )


class TestArxivIdFromUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://arxiv.org/abs/2005.11401", "2005.11401"),
            ("https://arxiv.org/abs/2005.11401v3", "2005.11401"),
            ("http://arxiv.org/pdf/2005.11401v1", "2005.11401"),
            ("https://arxiv.org/pdf/2005.11401.pdf", "2005.11401"),
            ("https://arxiv.org/html/2403.01234v2", "2403.01234"),
            ("https://export.arxiv.org/abs/1706.03762", "1706.03762"),
            ("https://arxiv.org/abs/quant-ph/0201082v1", "quant-ph/0201082"),
            ("https://example.com/2005.11401", ""),
            ("https://arxiv.org/list/cs.CL/recent", ""),
            ("", ""),
        ],
    )
    def test_ids(self, url: str, expected: str) -> None:
        """The bare id (no version) of an arxiv.org abs/pdf/html URL; "" for anything else."""
        assert arxiv_id_from_url(url) == expected


class TestDoiFromText:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("https://doi.org/10.1145/3442188.3445922", "10.1145/3442188.3445922"),
            ("See doi:10.18653/v1/2020.acl-main.463, p. 3", "10.18653/v1/2020.acl-main.463"),
            ("(DOI 10.1038/NATURE14539).", "10.1038/nature14539"),
            ("first 10.1000/aaa; then 10.1000/bbb", "10.1000/aaa"),
            ('<a href="https://doi.org/10.1016/j.cell.2020.01.001">', "10.1016/j.cell.2020.01.001"),
            ("no identifier here", ""),
            ("version 10.1 of the tool", ""),
            ("", ""),
        ],
    )
    def test_dois(self, text: str, expected: str) -> None:
        """The first DOI in a text, lowercased, without trailing punctuation; "" if none."""
        assert doi_from_text(text) == expected
