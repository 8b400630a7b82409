"""efetch XML is parsed with Bio.Entrez offline: DTDs come from Biopython's bundle, never
from the network; an unknown yearly PubMed DTD falls back to the newest bundled one."""

from __future__ import annotations

import socket

import pytest

from conftest import shared_path
from cluster.demo.loopback import LoopbackServer, Response
from connectors.pubmed import (UnreadableAnswer, missing_dtd_parts, newest_pubmed_dtd,
                              parse_efetch, prepare_doctype)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every attempt to reach a host other than this machine, refused and counted."""
    attempts: list[object] = []
    connect, resolve = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self, address, *args):
        if isinstance(address, tuple) and address[0] in LOOPBACK:
            return connect(self, address, *args)
        attempts.append(address)
        raise OSError("network access refused by the test")

    def guarded_resolve(host, *args, **kwargs):
        if host in LOOPBACK:
            return resolve(host, *args, **kwargs)
        attempts.append(host)
        raise socket.gaierror("name resolution refused by the test")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_resolve)
    yield attempts
    assert attempts == []


def _body(name: str) -> bytes:
    return shared_path("fixtures", "http", "ncbi", name).read_bytes()


def test_bundled_dtd_is_used_as_is():
    body = _body("efetch_pubmed_34843274_collective-author.xml")
    # only the XML declaration is written anew (everything before the root is)
    assert prepare_doctype(body) == (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                                     + body[body.index(b"<!DOCTYPE"):], True)
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


# --- hostile answers: nothing is fetched, one sentence says why ------------------

BUNDLED = (b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')
REMOTE = b"https://dtd.nlm.nih.gov/ncbi/pubmed/out/articleset_2031.dtd"
NO_DTD = ("PubMed answered in a format described by {}, which the installed Biopython does not "
          "include: upgrade biopython (pip install -U biopython) and try again.")
HOSTILE = ("PubMed sent an answer with {}, which cluster does not read: try again later, and "
           "report it if it keeps happening.")


def _with_prolog(prolog: bytes, *, inner: bytes = b"<PubmedArticle>") -> bytes:
    body = _body("efetch_pubmed_2ids.xml")
    assert BUNDLED in body
    rest = body[body.index(b"<PubmedArticleSet"):].replace(b"<PubmedArticle>", inner, 1)
    return b'<?xml version="1.0" ?>\n' + prolog + b"\n" + rest


HOSTILE_BODIES = {
    # the bundled DOCTYPE inside a comment, the real one remote: a pattern saw the comment
    "doctype-in-comment": (_with_prolog(b"<!-- " + BUNDLED + b" -->\n<!DOCTYPE PubmedArticleSet "
                                        b'PUBLIC "-//NLM//DTD X//EN" "' + REMOTE + b'">'),
                           NO_DTD.format("articleset_2031.dtd")),
    "doctype-after-2k-of-comment": (_with_prolog(b"<!-- " + b"x" * 3000 + b' -->\n<!DOCTYPE '
                                                 b'PubmedArticleSet PUBLIC "-//NLM//DTD X//EN" "'
                                                 + REMOTE + b'">'),
                                    NO_DTD.format("articleset_2031.dtd")),
    "system-doctype": (_with_prolog(b'<!DOCTYPE PubmedArticleSet SYSTEM "' + REMOTE + b'">'),
                       NO_DTD.format("articleset_2031.dtd")),
    "other-host": (_with_prolog(b'<!DOCTYPE PubmedArticleSet PUBLIC "-//X//EN" '
                                b'"https://dtd.example.org/x/evil.dtd">'),
                   NO_DTD.format("evil.dtd")),
    "odd-name": (_with_prolog(b'<!DOCTYPE PubmedArticleSet PUBLIC "-//X//EN" '
                              b'"https://dtd.nlm.nih.gov/x/evil dtd?.dtd">'),
                 NO_DTD.format("an unknown DTD")),
    "internal-subset": (_with_prolog(BUNDLED[:-1] + b' [ <!ENTITY % ext SYSTEM '
                                     b'"https://dtd.nlm.nih.gov/ncbi/x/evil.dtd"> %ext; ]>'),
                        HOSTILE.format("declarations of its own (an internal DTD subset)")),
    "schema-on-an-inner-element": (_with_prolog(BUNDLED, inner=(
        b'<PubmedArticle xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:noNamespaceSchemaLocation="https://www.ncbi.nlm.nih.gov/x/evil.xsd">')),
        HOSTILE.format("an XML schema to fetch")),
    "latin-1": (_with_prolog(BUNDLED).replace(b'version="1.0" ?>', b'version="1.0" '
                                              b'encoding="ISO-8859-1"?>'),
                HOSTILE.format("an encoding other than UTF-8 (iso-8859-1)")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_efetch_bodies_fetch_nothing_and_fail_in_one_sentence(name, no_network):
    body, message = HOSTILE_BODIES[name]
    with pytest.raises(UnreadableAnswer) as info:
        parse_efetch(body)
    assert str(info.value) == message
    assert no_network == []


def test_every_part_of_the_bundled_pubmed_dtd_is_installed():
    # the dry run resolves what Bio.Entrez would: nothing left to download
    assert missing_dtd_parts("pubmed_250101.dtd") == ()
    assert missing_dtd_parts("no_such_file.dtd") == ("no_such_file.dtd",)


@pytest.mark.parametrize("name", ["doctype-in-comment", "schema-on-an-inner-element"])
def test_cli_reports_a_hostile_answer_in_one_sentence_without_fetching(name, run, monkeypatch,
                                                                        no_network):
    body, message = HOSTILE_BODIES[name]
    server = LoopbackServer({"/ncbi": lambda req: Response(200, body, content_type="text/xml")})
    server.start()
    try:
        monkeypatch.setenv("CLUSTER_PUBMED_URL", server.url + "/ncbi")
        result = run("fetch", "--pmid", "11748933", "-q", expect=1)
        assert len(server.log) == 1  # refused at once, not retried
    finally:
        server.stop()
    assert result.stderr == f"Error: {message}\n" and result.stdout == ""
    assert no_network == []
