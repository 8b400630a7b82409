"""Every recorded response in ../shared/fixtures/http is served over loopback HTTP and parsed.

Each recording is requested through the real HTTP layer exactly as it was
recorded (method, path, parameters minus credentials) and parsed by the
connector's parser; the assertions name values read from the files. Error
recordings must give the right exception and sentence.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from base.errors import NotFound, RateLimited, RequestRejected, ServiceDown
from conftest import shared_path
from connectors import crossref, openalex, opencitations, pubmed
from connectors.http import SECRET_PARAMS, HttpLayer, Settings
from replay import Replay, load_index

SERVICE_OF = {"ncbi": "pubmed", "crossref": "crossref", "openalex": "openalex",
              "opencitations": "opencitations"}


@pytest.fixture(scope="module")
def entries():
    return load_index(shared_path("fixtures", "http"))


@pytest.fixture(scope="module")
def server(entries):
    replay = Replay([]).start()
    yield replay
    replay.stop()


@pytest.fixture(scope="module")
def layer(server):
    url = server.server.url
    settings = Settings(base_urls={"pubmed": url + "/ncbi", "crossref": url + "/crossref",
                                   "openalex": url + "/openalex",
                                   "opencitations": url + "/opencitations"},
                        max_retries=2, backoff_base=0.001, backoff_max=0.01,
                        rate_limits={s: 1000 for s in SERVICE_OF.values()})
    http = HttpLayer(settings)
    yield http
    http.close()


def _request(server: Replay, layer: HttpLayer, entry, parse: Callable[[bytes], Any],
             path: str | None = None):
    """Serve only `entry` and request it as it was recorded."""
    server.entries[:] = [entry]
    server._turns.clear()
    service = SERVICE_OF[entry.service]
    if not entry.path:  # the 429 body was recorded without its URL: serve it on esearch
        path = "/entrez/eutils/esearch.fcgi"
        server.serve_at(entry, path, "GET")
    params = [(k, v) for k, v in entry.params if k not in SECRET_PARAMS]
    not_found = lambda: NotFound(service, f"{service}: not found")  # noqa: E731
    return layer.request(service, "raw", path or entry.path, params, parse=parse,
                         method=entry.method, not_found=not_found,
                         expect="xml" if entry.service == "ncbi" and entry.file.endswith(
                             (".xml", ".html")) else "json")[0]


def _efetch(body):
    return {r.pmid: r for r in pubmed.parse_efetch(body)}


def _elink(body):
    return pubmed.parse_elink(body)


def _raw_json(body):
    return json.loads(body)


def check_efetch_1234567(r):
    rec = r["1234567"]
    assert rec.title.startswith("The effect of castration and peroral estrogen therapy")
    assert (rec.year, rec.doi, rec.volume, rec.pages) == (1975, "10.1159/000398269", "3", "94-104")
    assert len(rec.authors) == 4 and rec.language == ("en",)


def check_efetch_23121403(r):
    rec = r["23121403"]
    assert rec.doi == "10.1056/nejmoa1210384" and len(rec.authors) == 13
    assert rec.pub_types == ("Journal Article", "Multicenter Study",
                             "Randomized Controlled Trial", "Research Support, Non-U.S. Gov't")
    assert (rec.volume, rec.issue, rec.pages) == ("367", "21", "1979-1987")
    assert rec.abstract.startswith("BACKGROUND: Patients who have had a first")
    assert {c["type"] for c in rec.extra["comments_corrections"]} == {"CommentIn"}


def check_efetch_24349601(r):
    rec = r["24349601"]
    assert rec.title == "Genes, Economics, and Happiness."
    assert rec.pmcid == "PMC3858957" and rec.extra["status"] == "PubMed-not-MEDLINE"
    assert len(rec.extra["references"]) == 91
    assert rec.keywords[0] == "5-HTTLPR" and len(rec.keywords) == 6


def check_efetch_29106400(r):
    # the recording filed under 29106400 actually holds PMID 27797938
    assert list(r) == ["27797938"]
    rec = r["27797938"]
    assert rec.title == ("Leucocyte telomere length, genetic variants at the TERT gene region "
                         "and risk of pancreatic cancer.")
    assert "<" not in rec.title and len(rec.authors) == 22
    assert rec.abstract.split("\n")[0].startswith("OBJECTIVE: Telomere shortening")
    assert "ptrend=0.048" in rec.abstract and "r2<0.25" in rec.abstract
    assert [line.split(":")[0] for line in rec.abstract.split("\n")] == [
        "OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert rec.pmcid == "PMC5442267" and rec.doi == "10.1136/gutjnl-2016-312510"


def check_efetch_29915538(r):
    rec = r["29915538"]
    assert rec.extra["status"] == "PubMed-not-MEDLINE" and rec.pmcid == "PMC5994433"
    assert rec.doi == "10.3389/fphar.2018.00576" and len(rec.authors) == 6
    assert len(rec.extra["references"]) == 45


def check_efetch_2ids(r):
    assert list(r) == ["11748933", "11700088"]
    assert r["11748933"].journal == "Cryobiology" and len(r["11748933"].authors) == 8
    assert r["11700088"].pages == "117-123" and len(r["11700088"].authors) == 6


def check_efetch_2ids_abstract(r):
    assert list(r) == ["12091962", "9997"]
    assert r["12091962"].doi is None and r["12091962"].pub_types == ("Journal Article", "Review")
    assert r["9997"].doi == "10.1016/0005-2795(76)90109-4" and r["9997"].year == 1976


def check_efetch_30108519(r):
    rec = r["30108519"]
    assert rec.title.startswith('A "Blood Relationship" Between the Overlooked Minimum')
    assert "math" not in rec.abstract and "<" not in rec.abstract.replace("< ", "")
    assert "LEmin" in rec.abstract and rec.pmcid == "PMC6079548"


def check_efetch_33856845(r):
    rec = r["33856845"]
    assert rec.pub_types == ("Journal Article", "Systematic Review")
    assert rec.abstract.startswith("OBJECTIVE: Identifying specific insight")
    assert len(rec.authors) == 3 and rec.year == 2021


def check_efetch_34843274(r):
    rec = r["34843274"]
    assert rec.authors == ("Guideline Development Panel for the Treatment of Depressive Disorders",)
    assert rec.author_details[0].collective is True and rec.doi == "10.1037/amp0000904"


def check_efetch_36987902(r):
    rec = r["36987902"]
    assert rec.language == ("en", "no")
    assert rec.extra["vernacular_title"].startswith("Pasienter over 75 år innlagt")
    assert rec.author_details[0].orcid == "0000-0001-7093-6988"
    assert rec.author_details[0].affiliations == (
        "Kirurgisk serviceklinikk, Haukeland universitetssjukehus.",)
    assert rec.authors[0] == "Bruserud, Øyvind" and len(rec.authors) == 7
    assert rec.abstract.split("\n")[1].startswith("MATERIAL AND METHOD: All patients")


def check_efetch_37909814(r):
    assert r == {}


def check_efetch_38048813(r):
    rec = r["38048813"]
    assert rec.language == ("de",) and rec.pub_types == ("Editorial",) and rec.abstract is None
    assert len(rec.authors) == 5


def check_efetch_38833988(r):
    rec = r["38833988"]
    assert rec.pub_types == ("Published Erratum",)
    assert rec.extra["errata"][0]["type"] == "ErratumFor"
    assert rec.extra["errata"][0]["pmid"] == "33279609"


def check_esearch(count, first, n, warnings=()):
    def check(result):
        ids, got_count, got_warnings = result
        assert got_count == count and len(ids) == n and (ids[:1] == (first,) if first else not ids)
        assert got_warnings == warnings
    return check


def check_elink(expected):
    def check(sets):
        got = [(seeds, {k: len(v) for k, v in names.items()}) for seeds, names in sets]
        assert got == expected
    return check


def check_legacy_scores_1id(sets):
    (seeds, names), = sets
    links = names["pubmed_pubmed"]
    assert seeds == ("9298984",) and len(links) == 144
    assert links[0] == pubmed.Link("9298984", 2147483647.0)
    scores = [link.score for link in links]
    assert scores == sorted(scores, reverse=True)


def check_crossref_work(doi, title, n_authors, n_refs, language, typ):
    def check(message):
        rec = crossref.work_to_record(message)
        refs = [crossref.to_reference(x) for x in message.get("reference", [])]
        assert rec.doi == doi and rec.title == title and len(rec.authors) == n_authors
        assert len(refs) == n_refs and rec.language == language and rec.pub_types == (typ,)
    return check


def check_crossref_list(total, n_items, first_doi):
    def check(message):
        assert message["total-results"] == total and len(message["items"]) == n_items
        if first_doi:
            assert crossref.work_to_record(message["items"][0]).doi == first_doi
    return check


def check_oa_work(wid, doi, pmid, n_authors, n_refs, n_related):
    def check(work):
        rec = openalex.work_to_record(work)
        assert (rec.openalex, rec.doi, rec.pmid) == (wid, doi, pmid)
        assert len(rec.authors) == n_authors
        assert len(rec.extra["referenced_works"]) == n_refs
        assert len(rec.extra["related_works"]) == n_related
    return check


def check_oc_links(side, n_rows, n_unique, first):
    def check(rows):
        ids = [opencitations.pid_to_id(r[side]) for r in rows]
        assert len(rows) == n_rows and len(set(ids)) == n_unique and ids[0] == first
    return check


# file -> (parser, check) or (parser, exception class, message fragment)
EXPECTED: dict[str, tuple] = {
    "efetch_pubmed_1234567.xml": (_efetch, check_efetch_1234567),
    "efetch_pubmed_23121403.xml": (_efetch, check_efetch_23121403),
    "efetch_pubmed_24349601_with-referencelist-91.xml": (_efetch, check_efetch_24349601),
    "efetch_pubmed_29106400_html-tags-in-abstract.xml": (_efetch, check_efetch_29106400),
    "efetch_pubmed_29915538_pubmed-not-medline.xml": (_efetch, check_efetch_29915538),
    "efetch_pubmed_2ids.xml": (_efetch, check_efetch_2ids),
    "efetch_pubmed_2ids_rettype-abstract.xml": (_efetch, check_efetch_2ids_abstract),
    "efetch_pubmed_30108519_mathml-in-abstract.xml": (_efetch, check_efetch_30108519),
    "efetch_pubmed_33856845_systematic-review_structured-abstract.xml":
        (_efetch, check_efetch_33856845),
    "efetch_pubmed_34843274_collective-author.xml": (_efetch, check_efetch_34843274),
    "efetch_pubmed_36987902_eng-nor_vernacular-title_structured-abstract.xml":
        (_efetch, check_efetch_36987902),
    "efetch_pubmed_37909814_empty-articleset.xml": (_efetch, check_efetch_37909814),
    "efetch_pubmed_38048813_ger_editorial_no-abstract.xml": (_efetch, check_efetch_38048813),
    "efetch_pubmed_38833988_published-erratum_commentscorrections.xml":
        (_efetch, check_efetch_38833988),
    "efetch_pubmed_no-retmode_html-asn1.html": (_efetch, ServiceDown,
        "PubMed is not answering properly (unusable answer: an HTML page instead of XML after "
        "3 attempts): check your connection or try again later."),
    "einfo_truncated-corrupt.xml": (_efetch, ServiceDown,
        "PubMed is not answering properly (unusable answer: not a whole XML document "
        "(CorruptedXMLError) after 3 attempts)"),
    "esearch_no-results_errorlist_warninglist.xml": (pubmed.parse_esearch, check_esearch(
        0, None, 0, ("PubMed: phrase not found: abcXYZ",
                     "PubMed: output message: No items found."))),
    "esearch_pubmed_author_hart-rk.xml": (pubmed.parse_esearch,
                                          check_esearch(34, "40455089", 34)),
    "esearch_pubmed_cancer_usehistory_retmax100.xml": (pubmed.parse_esearch,
                                                       check_esearch(42249, "41297076", 100)),
    "esearch_pubmed_pnas-vol97_retstart6_retmax6.xml": (pubmed.parse_esearch,
                                                        check_esearch(2651, "11121077", 6)),
    "esearch_pubmed_term-biopython.xml": (pubmed.parse_esearch,
                                          check_esearch(63, "41282813", 20)),
    "esummary_pubmed_2ids.xml": (pubmed.read_entrez_xml, lambda docs: (
        [d["Id"] for d in docs] == ["11850928", "11482001"]
        and docs[0]["Title"] == "Zirconium granuloma following treatment of rhus dermatitis."
    ) or pytest.fail(
        f"esummary parsed as {[d.get('Id') for d in docs]}")),
    "esummary_error_no-id.xml": (pubmed.read_entrez_xml, RequestRejected,
        "PubMed reported an error (Neither query_key nor id specified): check the ids or "
        "query and try again."),
    "epost_error_invalid-db.xml": (pubmed.parse_elink, RequestRejected,
        "PubMed reported an error (Invalid db name specified: nothing)"),
    "epost_error_invalid-id.xml": (pubmed.parse_elink, RequestRejected,
        "PubMed reported an error (Empty ID list; Nothing to store; Some IDs have invalid value "
        "and were omitted"),
    "error_429_api-rate-limit-exceeded.json": (pubmed.parse_esearch, RateLimited,
        "PubMed is rate-limiting: set NCBI_API_KEY or try later."),
    "elink_medgen-to-pubmed_id0_no-linksetdb.xml": (_elink, check_elink([(("0",), {})])),
    "elink_pubmed_ncheck.xml": (_elink, check_elink([((), {})])),
    "elink_pubmed_neighbor_1234567_with-headers.xml": (_elink, check_elink([(("1234567",), {
        "pubmed_pubmed": 94, "pubmed_pubmed_alsoviewed": 1, "pubmed_pubmed_citedin": 8,
        "pubmed_pubmed_combined": 6, "pubmed_pubmed_five": 6, "pubmed_pubmed_reviews": 3,
        "pubmed_pubmed_reviews_five": 3})])),
    "elink_pubmed_neighbor_1id_all-linknames.xml": (_elink, check_elink([(("9298984",), {
        "pubmed_pubmed": 101, "pubmed_pubmed_citedin": 39, "pubmed_pubmed_combined": 5,
        "pubmed_pubmed_five": 5, "pubmed_pubmed_refs": 56, "pubmed_pubmed_reviews": 1,
        "pubmed_pubmed_reviews_five": 5})])),
    "elink_pubmed_neighbor_2ids_comma-joined_merged.xml": (_elink, check_elink([(
        ("11812492", "11774222"), {"pubmed_pubmed": 284, "pubmed_pubmed_citedin": 3,
                                   "pubmed_pubmed_combined": 10, "pubmed_pubmed_five": 10,
                                   "pubmed_pubmed_reviews": 282,
                                   "pubmed_pubmed_reviews_five": 10})])),
    "elink_pubmed_neighbor_term-medline-sb.xml": (_elink, check_elink([(("12242737",), {
        "pubmed_pubmed": 156, "pubmed_pubmed_citedin": 6, "pubmed_pubmed_combined": 5,
        "pubmed_pubmed_five": 5, "pubmed_pubmed_reviews": 1, "pubmed_pubmed_reviews_five": 5})])),
    "legacy2008_elink_comma-joined-ids_one-linkset.xml": (_elink, check_elink([(
        ("730439", "68536103", "1621261", "20807972"),
        {"protein_pubmed": 5, "protein_pubmed_refseq": 2})])),
    "legacy2008_elink_pubmed_neighbor_scores_1id.xml": (_elink, check_legacy_scores_1id),
    "legacy2008_elink_pubmed_neighbor_scores_2ids_merged.xml": (_elink, check_elink([(
        ("11812492", "11774222"), {"pubmed_pubmed": 347})])),
    "legacy2008_elink_repeated-id-param_per-id-linksets.xml": (_elink, check_elink([
        (("1621261",), {"protein_pubmed": 2}),
        (("68536103",), {"protein_pubmed": 1, "protein_pubmed_refseq": 1}),
        (("20807972",), {"protein_pubmed": 1, "protein_pubmed_refseq": 1}),
        (("730439",), {"protein_pubmed": 1})])),
    "idconv_doi-to-pmid-pmcid.json": (_raw_json, lambda d: (
        d["records"][0]["pmid"] == "20495566" and d["records"][0]["pmcid"] == "PMC2883744"
        or pytest.fail(str(d["records"][0])))),
    # Crossref
    "works_10.1371_journal.pone.0033693_70refs.json": (crossref.parse_work, check_crossref_work(
        "10.1371/journal.pone.0033693", "Methylphenidate Exposure Induces Dopamine Neuron Loss "
        "and Activation of Microglia in the Basal Ganglia of Mice", 6, 70, ("en",),
        "journal-article")),
    "works_10.1136_esmoopen-2020-000776_refs-mostly-no-doi.json": (
        crossref.parse_work, check_crossref_work(
            "10.1136/esmoopen-2020-000776", "Phase II study of lenvatinib for metastatic "
            "colorectal cancer refractory to standard chemotherapy: the LEMON study (NCCH1503)",
            13, 28, ("en",), "journal-article")),
    "works_10.1109_icdcsw.2003.1203662_proceedings-article.json": (
        crossref.parse_work, check_crossref_work(
            "10.1109/icdcsw.2003.1203662", "Accurate and explicit differentiation of wireless "
            "and congestion losses", 2, 13, (), "proceedings-article")),
    "works_10.3892_ijo_00000353_no-references.json": (crossref.parse_work, check_crossref_work(
        "10.3892/ijo_00000353", "Human bladder cancer cells undergo cisplatin-induced apoptosis "
        "that is associated with p53-dependent and p53-independent responses", 1, 0, (),
        "journal-article")),
    "works_10.1016_j.neurobiolaging.2010.03.024.json": (crossref.parse_work, check_crossref_work(
        "10.1016/j.neurobiolaging.2010.03.024", "Human umbilical cord blood-derived mesenchymal "
        "stem cells improve neuropathology and cognitive impairment in an Alzheimer's disease "
        "mouse model through modulation of neuroinflammation", 11, 57, ("en",),
        "journal-article")),
    "works_10.1038_s42256-024-00832-8_urlencoded-doi.json": (
        crossref.parse_work, check_crossref_work(
            "10.1038/s42256-024-00832-8", "Augmenting large language models with chemistry "
            "tools", 6, 103, ("en",), "journal-article")),
    "works_not-found_404.txt": (crossref.parse_work, NotFound, "crossref: not found"),
    "members-98-works_query.author-carl-boettiger_rows7.json": (
        crossref.parse_work_list, check_crossref_list(179, 7, None)),
    "members-98-works_rows5_cursor_page1.json": (
        crossref.parse_work_list, check_crossref_list(138567, 5, "10.4061/2010/505436")),
    "members-98-works_rows5_cursor_page2.json": (
        crossref.parse_work_list, check_crossref_list(138567, 5, "10.1111/dth.13147")),
    "members-98-works_rows5_cursor_page3.json": (
        crossref.parse_work_list, check_crossref_list(138567, 5, "10.1155/2014/861942")),
    "members-98-works_rows5_cursor_page4.json": (
        crossref.parse_work_list, check_crossref_list(138567, 5, "10.1111/jai.12009")),
    "journals-2167-8359-works_filter-type-journal-article_query.bibliographic.json": (
        crossref.parse_work_list, check_crossref_list(230, 20, None)),
    "works_cursor-invalid_404.json": (crossref.parse_work_list, NotFound, "crossref: not found"),
    "works_doi-with-field-query_400.json": (crossref.parse_work, RequestRejected,
        "Crossref rejected the request (HTTP 400: This route does not support field query "
        "parameters): check the identifiers or query and try again."),
    "works_select-DOI-title.json": (crossref.parse_work_list,
                                    check_crossref_list(586628, 20, None)),
    "error_504_gateway-timeout.html": (crossref.parse_work_list, ServiceDown,
        "Crossref is not answering properly (HTTP 504 after 3 attempts): check your connection "
        "or try again later."),
    "error_500_exception_bad-cursor.json": (crossref.parse_work_list, ServiceDown,
        "Crossref is not answering properly (HTTP 500 after 3 attempts)"),
    "error_400_sample-too-large.json": (crossref.parse_work_list, RequestRejected,
        "Crossref rejected the request (HTTP 400: Integer specified as 200 but must be a "
        "positive integer less than or equal to 100): check"),
    "works_query.title_query.author_select_mailto-param.json": (
        crossref.parse_work_list, check_crossref_list(4386, 1, None)),
    "works_query.title_zero-results.json": (crossref.parse_work_list,
                                            check_crossref_list(0, 0, None)),
    # OpenAlex
    "works_doi_10.1016_j.xgen.2025.100814.json": (openalex.parse_work, check_oa_work(
        "W4408732759", "10.1016/j.xgen.2025.100814", "40120586", 6, 59, 10)),
    "works_doi_select-open_access-doi.json": (openalex.parse_work, lambda w: (
        openalex.work_to_record(w).doi == "10.1021/acs.jctc.5b00178" or pytest.fail(str(w)))),
    "works_doi_not-found_404.html": (openalex.parse_work, NotFound, "openalex: not found"),
    "works_filter-title.search_list.json": (openalex.parse_list, lambda d: (
        d["meta"]["count"] == 1 and openalex.work_to_record(d["results"][0]).doi
        == "10.1063/1.4938384" or pytest.fail(str(d["meta"])))),
    "works_W2741809807_full.json": (openalex.parse_work, check_oa_work(
        "W2741809807", "10.7717/peerj.4375", "29456894", 9, 45, 10)),
    "authors_A5023888391.json": (_raw_json, lambda a: (
        a["works_api_url"].endswith("filter=author.id:A5023888391") or pytest.fail(str(a)))),
    # OpenCitations
    "coci-v1_citations_10.1108_jd-12-2013-0166.json": (
        opencitations.parse_index, check_oc_links("citing", 20, 20, "10.1145/3197026.3197050")),
    "coci-v1_references_10.1108_jd-12-2013-0166.json": (
        opencitations.parse_index, check_oc_links("cited", 37, 37, "10.1001/jama.295.1.90")),
    "coci-v1_metadata_2dois.json": (opencitations.parse_index, lambda rows: (
        [r["doi"].lower() for r in rows] == ["10.1108/jd-12-2013-0166",
                                             "10.1371/journal.pgen.1005937"]
        or pytest.fail(str([r.get("doi") for r in rows])))),
    "coci-v1_citation_by-oci.json": (opencitations.parse_index,
                                     check_oc_links("citing", 1, 1, "10.1108/jd-12-2013-0166")),
    "index-v2_citation_by-oci_DOC-EXAMPLE.json": (
        opencitations.parse_index, check_oc_links("citing", 1, 1, "10.7717/peerj-cs.421")),
    "index-v2_citation-count_DOC-EXAMPLE.json": (opencitations.parse_index, lambda rows: (
        rows == [{"count": "34"}] or pytest.fail(str(rows)))),
}


def test_every_recording_has_an_expectation(entries):
    assert sorted(e.name for e in entries) == sorted(EXPECTED)
    assert len(entries) == 70


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recording_served_and_parsed(name, entries, server, layer):
    entry = next(e for e in entries if e.name == name)
    parse, *expect = EXPECTED[name]
    if len(expect) == 2:
        error, message = expect
        with pytest.raises(error) as info:
            _request(server, layer, entry, parse)
        assert message in str(info.value)
    else:
        expect[0](_request(server, layer, entry, parse))
    assert server.served, "the replay server answered nothing"
