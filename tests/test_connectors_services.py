"""The four connectors end to end over loopback HTTP, answered from the real recordings."""

from __future__ import annotations

import json

import pytest

from base.errors import InvalidInput, RequestRejected
from conftest import shared_path
from connectors.http import Link, Settings
from cluster.demo.loopback import Response
from connectors.services import connect
from replay import Replay, load_index

FAST = dict(max_retries=2, backoff_base=0.001, backoff_max=0.01, timeout=(2, 2),
            rate_limits={"pubmed": 1000, "crossref": 1000, "openalex": 1000,
                         "opencitations": 1000})


@pytest.fixture(scope="module")
def recordings():
    return load_index(shared_path("fixtures", "http"))


@pytest.fixture(scope="module")
def server():
    r = Replay([]).start()
    yield r
    r.stop()


@pytest.fixture
def replay(server, recordings):
    r = server.reset([e for e in recordings if not e.name.startswith("legacy2008")])
    for e in list(r.entries):  # OpenCitations v1 recordings answer the v2 routes
        if e.name.startswith("coci-v1_citations"):
            r.serve_at(e, "/index/v2/citations/doi:10.1108/jd-12-2013-0166")
        if e.name.startswith("coci-v1_references"):
            r.serve_at(e, "/index/v2/references/doi:10.1108/jd-12-2013-0166")
    return r


@pytest.fixture
def services(replay):
    s = connect(Settings(base_urls=replay.base_urls(), **FAST))
    yield s
    s.close()


def _requests(replay, path):
    return replay.requests_to(path)


# --- PubMed ---------------------------------------------------------------------------


def test_pubmed_fetch_batch_reports_missing_and_malformed(services, replay):
    got = services.pubmed.fetch(["36987902", "pmid: 34843274", "37909814", "abc", "23121403"])
    assert [r.pmid for r in got.records] == ["36987902", "34843274", "23121403"]
    assert got.missing == ("37909814",)
    assert got.failed == {"abc": "PubMed ids are numbers and 'abc' is not one: check the PMID "
                                 "(e.g. 31452104)."}
    assert len(got.calls) == 1 and got.calls[0].n_results == 3
    assert got.calls[0].params == {"db": "pubmed", "id": "36987902,34843274,37909814,23121403",
                                   "retmode": "xml"}
    assert [r.method for r in _requests(replay, "/ncbi/entrez/eutils/efetch.fcgi")] == ["GET"]
    rec = got.records[0]
    assert rec.source_id == "36987902" and rec.language == ("en", "no")


def test_pubmed_fetch_posts_batches_above_200(services, replay):
    ids = ["36987902", "34843274"] + [str(90000000 + i) for i in range(248)]
    got = services.pubmed.fetch(ids, batch_size=250)
    assert [r.pmid for r in got.records] == ["36987902", "34843274"]
    assert len(got.missing) == 248
    assert [r.method for r in _requests(replay, "/ncbi/entrez/eutils/efetch.fcgi")] == ["POST"]


def test_pubmed_fetch_only_bad_ids_raises(services):
    with pytest.raises(InvalidInput, match=r"^PubMed ids are numbers and '12a' is not one"):
        services.pubmed.fetch(["12a"])


def test_pubmed_search_author_and_warnings(services):
    found = services.pubmed.search("hart rk[author]", retmax=250)
    assert found.count == 34 and len(found.ids) == 34 and found.ids[0] == "40455089"
    assert found.calls[0].params["term"] == "hart rk[author]"
    assert found.warnings == ()


def test_pubmed_search_error_list_is_a_zero_result_with_warnings(replay, services):
    entry = next(e for e in replay.entries if e.name.startswith("esearch_no-results"))
    replay.serve_at(entry, entry.path, params=[("term", "abcXYZ"), ("db", "pubmed")])
    found = services.pubmed.search("abcXYZ")
    assert (found.ids, found.count) == ((), 0)
    assert found.warnings == ("PubMed: phrase not found: abcXYZ",
                              "PubMed: output message: No items found.")


def test_pubmed_search_past_reach_warns(services, replay):
    replay.server.route("/ncbi/entrez/eutils/esearch.fcgi", lambda req: Response(
        200, b"<eSearchResult><Count>25000</Count><RetMax>3</RetMax><RetStart>0</RetStart>"
             b"<IdList><Id>1</Id><Id>2</Id><Id>3</Id></IdList></eSearchResult>",
        content_type="text/xml"))
    found = services.pubmed.search("cancer", retmax=20000)
    assert found.count == 25000 and found.ids == ("1", "2", "3")
    assert found.warnings[0] == ("PubMed returns only the first 10,000 records of a query: "
                                 "split it by date ([dp]) to reach the rest.")


def test_pubmed_related_articles_ranked_by_score_without_seed(replay, recordings):
    legacy = next(e for e in recordings
                  if e.name == "legacy2008_elink_pubmed_neighbor_scores_1id.xml")
    replay.entries[:] = []
    replay.serve_at(legacy, legacy.path, params=[("id", "9298984"), ("cmd", "neighbor_score")])
    with connect(Settings(base_urls=replay.base_urls(), **FAST)) as s:
        links = s.pubmed.links(["9298984"], "pubmed_pubmed")
    ranked = links.by_seed["9298984"]
    assert len(ranked) == 143 and all(link.id != "9298984" for link in ranked)
    assert [link.score for link in ranked] == sorted((link.score for link in ranked), reverse=True)
    sent = replay.requests_to("/ncbi/entrez/eutils/elink.fcgi")[0].params
    assert ("cmd", "neighbor_score") in sent and ("linkname", "pubmed_pubmed") not in sent


def test_pubmed_links_keep_one_linkset_per_seed(services, replay):
    links = services.pubmed.links(["9298984", "1234567", "12242737"], "pubmed_pubmed_citedin")
    assert {k: len(v) for k, v in links.by_seed.items()} == {"9298984": 39, "1234567": 8,
                                                             "12242737": 6}
    assert links.by_seed["9298984"][0] == Link("38830800")
    sent = _requests(replay, "/ncbi/entrez/eutils/elink.fcgi")
    assert len(sent) == 1
    assert [v for k, v in sent[0].params if k == "id"] == ["9298984", "1234567", "12242737"]
    refs = services.pubmed.links(["9298984"], "pubmed_pubmed_refs")
    assert len(refs.by_seed["9298984"]) == 56


def test_pubmed_links_error_element_is_an_error(services, replay):
    entry = next(e for e in replay.entries if e.name == "epost_error_invalid-db.xml")
    replay.serve_at(entry, "/entrez/eutils/elink.fcgi", params=[("id", "1")])
    with pytest.raises(RequestRejected, match=r"PubMed reported an error \(Invalid db name"):
        services.pubmed.links(["1"], "pubmed_pubmed_citedin")


def test_pubmed_pmids_for_dois(services, replay):
    def esearch(req):
        known = {"10.4045/tidsskr.22.0358": "36987902", "10.1037/amp0000904": "34843274"}
        ids = "".join(f"<Id>{p}</Id>" for d, p in known.items() if d in req.get("term"))
        return Response(200, f"<eSearchResult><Count>{ids.count('<Id>')}</Count><IdList>{ids}"
                             f"</IdList></eSearchResult>".encode(), content_type="text/xml")
    replay.server.route("/ncbi/entrez/eutils/esearch.fcgi", esearch)
    mapping, calls = services.pubmed.pmids_for_dois(
        ["https://doi.org/10.4045/TIDSSKR.22.0358", "10.1037/amp0000904", "10.1/none"])
    assert mapping == {"10.4045/tidsskr.22.0358": "36987902", "10.1037/amp0000904": "34843274"}
    assert [c.endpoint for c in calls] == ["esearch", "efetch"]


# --- Crossref -------------------------------------------------------------------------


def test_crossref_works_batched_with_missing_and_malformed(services, replay):
    got = services.crossref.works(["10.1371/journal.pone.0033693",
                                   "https://doi.org/10.3892/IJO_00000353",
                                   "10.9999/unknown.1", "not a doi"])
    assert [r.doi for r in got.records] == ["10.1371/journal.pone.0033693", "10.3892/ijo_00000353"]
    assert got.missing == ("10.9999/unknown.1",)
    assert got.failed == {"not a doi": "'not a doi' is not a DOI: check it (a DOI looks like "
                                       "10.1234/abcd, with or without https://doi.org/)."}
    sent = _requests(replay, "/crossref/works")
    assert len(sent) == 1
    assert dict(sent[0].params)["filter"] == ("doi:10.1371/journal.pone.0033693,"
                                              "doi:10.3892/ijo_00000353,doi:10.9999/unknown.1")
    rec = got.records[0]
    assert rec.authors[0] == "Sadasivan, Shankar" and rec.year == 2012
    assert rec.pub_types == ("journal-article",) and rec.source_id == rec.doi


def test_crossref_unknown_single_doi_is_missing_with_a_logged_call(services):
    got = services.crossref.works(["10.1371/notarealdoi"])
    assert got.records == () and got.missing == ("10.1371/notarealdoi",)
    assert got.calls[0].n_results == 0 and got.calls[0].params == {"doi": "10.1371/notarealdoi"}


def test_crossref_references_keep_unstructured(services):
    refs = services.crossref.references(["10.1136/esmoopen-2020-000776",
                                         "10.1371/journal.pone.0033693",
                                         "10.3892/ijo_00000353"])
    esmo = refs.by_doi["10.1136/esmoopen-2020-000776"]
    assert len(esmo) == 28 and sum(1 for r in esmo if r.doi) == 1
    assert esmo[0].first_author == "Saltz"
    assert len(refs.by_doi["10.1371/journal.pone.0033693"]) == 70
    assert refs.by_doi["10.3892/ijo_00000353"] == ()


def test_crossref_cursor_paging_stops_on_short_page_not_unchanged_cursor(services, replay):
    pages = [json.loads(e.body) for e in sorted(
        (e for e in replay.entries if "rows5_cursor_page" in e.name), key=lambda e: e.name)]
    cursors = []

    def handler(req):
        cursors.append(req.get("cursor"))
        n = len(cursors)
        if n <= 4:
            return Response(200, json.dumps(pages[n - 1]).encode())
        last = dict(pages[3], message=dict(pages[3]["message"], items=[]))
        return Response(200, json.dumps(last).encode())

    replay.server.route("/crossref/members/98/works", handler)
    items, calls = services.crossref.list_works("/members/98/works", [], limit=100, page_rows=5)
    assert len(items) == 20 and len(calls) == 5
    assert cursors[0] == "*" and len(set(cursors[1:])) == 1  # the same cursor, page after page


def test_crossref_search_author(services, replay):
    got = services.crossref.search(author="carl boettiger", journal_articles=False, rows=7,
                                   path="/members/98/works")
    assert len(got.records) == 7
    assert got.calls[0].params == {"query.author": "carl boettiger", "rows": "7"}


def test_crossref_halves_a_batch_whose_url_is_too_long(services, replay):
    def handler(req):
        if req.get("filter", "").count("doi:") > 2:
            return Response(414, b"<html>Request-URI Too Large</html>", content_type="text/html")
        return Response(200, json.dumps({"status": "ok", "message-type": "work-list",
                                         "message": {"items": [{"DOI": f[4:]} for f in
                                                               req.get("filter").split(",")]}}
                                        ).encode())
    replay.server.route("/crossref/works", handler)
    got = services.crossref.works([f"10.1000/x{i}" for i in range(8)])
    assert len(got.records) == 8 and got.missing == ()
    assert len(got.calls) == 4


# --- OpenAlex -------------------------------------------------------------------------


def test_openalex_work_by_id_with_rebuilt_abstract(services):
    got = services.openalex.works(["https://openalex.org/W2741809807"])
    rec = got.records[0]
    assert rec.openalex == "W2741809807" and rec.pmid == "29456894" and rec.pmcid == "PMC5815332"
    assert rec.abstract.startswith("Despite growing interest in Open Access (OA) to scholarly "
                                   "literature, there is an unmet need")
    assert rec.authors[:2] == ("Piwowar, Heather", "Priem, Jason")
    assert rec.author_details[0].orcid == "0000-0003-1613-5981"
    assert rec.language == ("en",) and rec.pub_types == ("article",) and rec.journal == "PeerJ"


def test_openalex_or_batch_and_unknown(services, replay):
    got = services.openalex.works(["W2741809807", "W4408732759", "W1"])
    assert [r.openalex for r in got.records] == ["W2741809807", "W4408732759"]
    assert got.missing == ("W1",)
    sent = _requests(replay, "/openalex/works")
    assert dict(sent[0].params)["filter"] == "openalex:W2741809807|W4408732759|W1"


def test_openalex_batches_hold_at_most_50_values(services, replay):
    seen = []

    def handler(req):
        seen.append(req.get("filter").split(":", 1)[1].count("|") + 1)
        return Response(200, b'{"meta": {"count": 0}, "results": []}')
    replay.server.route("/openalex/works", handler)
    got = services.openalex.works([f"W{1000 + i}" for i in range(120)])
    assert seen == [50, 50, 20] and len(got.missing) == 120


def test_openalex_unknown_doi_404_html_is_missing(services):
    got = services.openalex.works(["10.1046/j.1365-2699.2003.00795"])
    assert got.records == () and got.missing == ("10.1046/j.1365-2699.2003.00795",)


def test_openalex_references_and_related(services):
    refs = services.openalex.referenced_works(["W2741809807"])
    related = services.openalex.related_works(["W2741809807"])
    assert len(refs.by_seed["W2741809807"]) == 45 and len(related.by_seed["W2741809807"]) == 10
    assert refs.by_seed["W2741809807"][0] == Link("W1560783210")


def test_openalex_cited_by_pages_and_drops_seed(services, replay):
    def handler(req):
        page = int(req.get("page"))
        per = int(req.get("per_page"))
        ids = [f"W{page * 1000 + i}" for i in range(per if page < 3 else 2)]
        if page == 1:
            ids[0] = "W2741809807"
        return Response(200, json.dumps({"meta": {}, "results": [{"id": f"https://openalex.org/{i}"}
                                                                 for i in ids]}).encode())
    replay.server.route("/openalex/works", handler)
    links = services.openalex.cited_by(["W2741809807"], per_seed=150)
    got = links.by_seed["W2741809807"]
    assert len(got) == 150 and Link("W2741809807") not in got and got[0] == Link("W1001")
    assert [c.params["page"] for c in links.calls] == ["1", "2"]


def test_openalex_author_works(services, replay):
    entry = next(e for e in replay.entries if e.name == "works_filter-title.search_list.json")
    replay.serve_at(entry, "/works", params=[("filter", "authorships.author.id:A5023888391")])
    got = services.openalex.author_works("https://openalex.org/A5023888391")
    assert [r.doi for r in got.records] == ["10.1063/1.4938384"]
    with pytest.raises(InvalidInput, match="is not an OpenAlex author id"):
        services.openalex.author_works("Jason Priem")


# --- OpenCitations --------------------------------------------------------------------


def test_opencitations_citations_and_references(services, replay):
    cites = services.opencitations.citations(["10.1108/JD-12-2013-0166", "10.1234/x"])
    assert len(cites.by_seed["10.1108/jd-12-2013-0166"]) == 20
    assert cites.by_seed["10.1108/jd-12-2013-0166"][0] == Link("10.1145/3197026.3197050")
    assert cites.failed == {"10.1234/x": "OpenCitations does not know the DOI 10.1234/x: "
                                         "check it."}
    refs = services.opencitations.references(["doi:10.1108/jd-12-2013-0166"])
    assert len(refs.by_seed["10.1108/jd-12-2013-0166"]) == 37


def test_opencitations_v2_pid_lists(services, replay):
    entry = next(e for e in replay.entries if e.name.startswith("index-v2_citation_by-oci"))
    replay.serve_at(entry, "/index/v2/citations/doi:10.1108/jd-12-2013-0166")
    replay.entries[:] = [e for e in replay.entries if not e.name.startswith("coci-v1")]
    replay.serve_at(entry, "/index/v2/citations/doi:10.1108/jd-12-2013-0166")
    cites = services.opencitations.citations(["10.1108/jd-12-2013-0166"])
    assert cites.by_seed == {"10.1108/jd-12-2013-0166": (Link("10.7717/peerj-cs.421"),)}


def test_pubmed_search_pages_with_retstart_and_dates(services, replay):
    seen = []

    def handler(req):
        seen.append((req.get("retstart"), req.get("retmax"), req.get("mindate"),
                     req.get("maxdate"), req.get("datetype"), req.get("sort")))
        start, size = int(req.get("retstart")), int(req.get("retmax"))
        ids = "".join(f"<Id>{i}</Id>" for i in range(start + 1, min(start + size, 25) + 1))
        return Response(200, f"<eSearchResult><Count>25</Count><IdList>{ids}</IdList>"
                             f"</eSearchResult>".encode(), content_type="text/xml")
    replay.server.route("/ncbi/entrez/eutils/esearch.fcgi", handler)
    found = services.pubmed.search("smith j[1au]", retmax=100, mindate="2010", maxdate="2020/12",
                                   sort="pub_date", page_size=10)
    assert found.ids == tuple(str(i) for i in range(1, 26)) and found.count == 25
    assert seen == [("0", "10", "2010", "2020/12", "pdat", "pub_date"),
                    ("10", "10", "2010", "2020/12", "pdat", "pub_date"),
                    ("20", "10", "2010", "2020/12", "pdat", "pub_date")]
