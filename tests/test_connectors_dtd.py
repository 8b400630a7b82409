"""efetch XML is parsed with Bio.Entrez offline: DTDs come from Biopython's bundle, never
from the network; an unknown yearly PubMed DTD falls back to the newest bundled one."""

from __future__ import annotations

import socket

import pytest

from conftest import shared_path
from connectors.pubmed import UnreadableAnswer, newest_pubmed_dtd, parse_efetch, prepare_doctype


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the parser tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _body(name: str) -> bytes:
    return shared_path("fixtures", "http", "ncbi", name).read_bytes()


def test_bundled_dtd_is_used_as_is():
    body = _body("efetch_pubmed_34843274_collective-author.xml")
    assert prepare_doctype(body) == (body, True)
    assert [r.pmid for r in parse_efetch(body)] == ["34843274"]


def test_unknown_yearly_pubmed_dtd_falls_back_to_newest_bundled():
    body = _body("efetch_pubmed_34843274_collective-author.xml").replace(
        b"pubmed_250101.dtd", b"pubmed_991231.dtd")
    prepared, validate = prepare_doctype(body)
    assert validate is False and newest_pubmed_dtd().encode() in prepared
    assert [r.pmid for r in parse_efetch(body)] == ["34843274"]


def test_legacy_http_doctype_is_pointed_at_the_local_file():
    body = _body("efetch_pubmed_2ids.xml")
    legacy = body.replace(b"https://dtd.nlm.nih.gov", b"http://dtd.nlm.nih.gov")
    assert legacy != body
    assert [r.pmid for r in parse_efetch(legacy)] == ["11748933", "11700088"]


def test_missing_doctype_gets_the_newest_pubmed_dtd():
    body = _body("efetch_pubmed_34843274_collective-author.xml")
    start = body.index(b"<!DOCTYPE")
    bare = body[:start] + body[body.index(b">", start) + 1:]
    assert [r.title[:20] for r in parse_efetch(bare)] == ["Summary of the clini"]


def test_unknown_dtd_fails_with_one_sentence_and_no_network():
    body = (b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD X//EN" '
            b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/articleset_2031.dtd">\n'
            b"<PubmedArticleSet></PubmedArticleSet>")
    with pytest.raises(UnreadableAnswer) as info:
        parse_efetch(body)
    assert str(info.value) == ("PubMed answered in a format described by articleset_2031.dtd, "
                               "which the installed Biopython does not include: upgrade "
                               "biopython (pip install -U biopython) and try again.")
