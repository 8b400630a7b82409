"""Full texts: the Unpaywall and PMC connectors on real answers, OpenAlex and Crossref
locations from the shared recordings, and find -> fetch -> attach on a loopback world
where downloads go wrong in every way a reviewer meets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from base.errors import InvalidInput
from base.record import Record
from base.output import OutputError, write_file
from cluster.demo.loopback import LoopbackServer, Request, Response
from cluster.demo.pdf import make_pdf
from cluster.fulltext import attach_file, attach_folder, fetch, find
from cluster.fulltext.attach import AttachError
from cluster.fulltext.check import NotFullText, check_file
from conftest import shared_path
from connectors.crossref import work_links
from connectors.download import Downloader
from connectors.http import Settings
from connectors.openalex import work_locations
from connectors.services import connect
from db.files import fulltext_dir, store_files
from db.state import fulltext_sources, retrievals
from screeners.decisions import decide
from fulltext_world import CAP_BYTES, DATA, FullTextWorld, full_text_store, pdf_for

FAST = dict(max_retries=1, backoff_base=0.001, backoff_max=0.01, timeout=(2, 2),
            rate_limits={"pubmed": 1000, "crossref": 1000, "openalex": 1000, "unpaywall": 1000,
                         "pmc": 1000, "download": 1000})
EMAIL = "reviewer@example.org"


# --- the connectors on real answers ---------------------------------------------------


@pytest.fixture(scope="module")
def recorded():
    """Unpaywall and PMC OA answers from tests/data/fulltext (see its SOURCES.md)."""
    files = {"10.1038/nature12373": "unpaywall-10.1038_nature12373.json",
             "10.1111/tbj.12248": "unpaywall-closed.json",
             "10.1186/landing": "unpaywall-landing-only.json"}
    oa = {"PMC6181615": "pmc-oa-PMC6181615.xml", "PMC8550608": "pmc-oa-not-open.xml"}

    def unpaywall(req: Request) -> Response:
        doi = req.path[len("/unpaywall/v2/"):]
        if doi in files:
            return Response(200, (DATA / files[doi]).read_bytes())
        return Response(404, (DATA / "unpaywall-404.json").read_bytes())

    def pmc(req: Request) -> Response:
        name = oa.get(req.get("id") or "", "pmc-oa-unknown.xml")
        return Response(200, (DATA / name).read_bytes(), content_type="text/xml")

    server = LoopbackServer({"/unpaywall/": unpaywall, "/pmc/": pmc}).start()
    yield server
    server.stop()


def _services(server, email=EMAIL, cache=None):
    return connect(Settings(email=email, cache_path=cache, **FAST,
                            base_urls={"unpaywall": server.url + "/unpaywall/v2",
                                       "pmc": server.url + "/pmc"}))


def test_unpaywall_lists_every_location_best_first_with_landing_pages_where_no_pdf(recorded):
    with _services(recorded) as s:
        got = s.unpaywall.locations(["10.1038/NATURE12373", "10.1111/tbj.12248",
                                     "10.1186/landing", "10.1234/unknown", "not a doi"])
    assert [(x.kind, x.url, x.version, x.host_type, x.best)
            for x in got.by_id["10.1038/nature12373"]] == [
        ("pdf", "https://dash.harvard.edu/bitstream/1/12285462/1/Nanometer-Scale%20Thermometry.pdf",
         "published", "repository", True),
        ("pdf", "http://europepmc.org/articles/pmc4221854?pdf=render", "accepted", "repository",
         False),
        ("landing", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC4221854", "accepted",
         "repository", False),
        ("pdf", "http://arxiv.org/pdf/1304.1068", "submitted", "repository", False)]
    assert got.by_id["10.1111/tbj.12248"] == ()
    assert [(x.kind, x.url) for x in got.by_id["10.1186/landing"]] == [
        ("landing", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC4221854")]
    assert got.missing == ("10.1234/unknown",)
    assert list(got.failed) == ["not a doi"]


def test_unpaywall_needs_the_contact_email_which_never_reaches_the_cache_or_the_log(
        recorded, tmp_path):
    with _services(recorded, email=None) as s:
        with pytest.raises(InvalidInput, match="^Unpaywall needs a contact e-mail: set "
                                               "CLUSTER_EMAIL"):
            s.unpaywall.locations(["10.1038/nature12373"])
    cache = tmp_path / "cache.sqlite"
    with _services(recorded, cache=cache) as s:
        got = s.unpaywall.locations(["10.1038/nature12373"])
        again = s.unpaywall.locations(["10.1038/nature12373"])
    sent = [r for r in recorded.requests_to("/unpaywall/") if r.path.endswith("nature12373")]
    assert ("email", EMAIL) in sent[-1].params
    assert got.calls[0].params == {"doi": "10.1038/nature12373"}
    assert again.calls[0].from_cache
    assert EMAIL.encode() not in cache.read_bytes()


def test_pmc_oa_service_pdf_over_https_xml_through_efetch_and_closed_or_unknown_ids(recorded):
    with _services(recorded) as s:
        got = s.pmc.locations(["PMC6181615", "pmc8550608", "PMC99999999", "x12"],
                              efetch_url="https://eutils.example/efetch.fcgi")
    assert [(x.kind, x.url, x.licence) for x in got.by_id["PMC6181615"]] == [
        ("pdf", "https://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_pdf/93/53/x.pdf", "CC BY-NC-ND"),
        ("xml", "https://eutils.example/efetch.fcgi?db=pmc&id=6181615", "CC BY-NC-ND")]
    assert got.by_id["PMC8550608"] == ()
    assert got.missing == ("PMC99999999",)
    assert got.failed == {"x12": "'x12' is not a PMCID (such as PMC2883744): check it."}


def test_pmc_id_converter_on_the_recorded_answer():
    from replay import Replay, load_index

    entries = [e for e in load_index(shared_path("fixtures", "http")) if "idconv" in e.file]
    replay = Replay(entries).start()
    try:
        with connect(Settings(**FAST, base_urls={"pmc": replay.server.url + "/ncbi/pmc/utils"})
                     ) as s:
            found, calls = s.pmc.pmcids(["10.1038/ng.590"])
    finally:
        replay.stop()
    assert found == {"10.1038/ng.590": "PMC2883744"}
    assert calls[0].n_results == 1


def test_openalex_locations_from_a_recorded_work():
    work = json.loads(shared_path("fixtures", "http", "openalex",
                                  "works_W2741809807_full.json").read_text())
    assert [(x.kind, x.url, x.version, x.host_type, x.best) for x in work_locations(work)] == [
        ("pdf", "https://peerj.com/articles/4375.pdf", "published", "publisher", True),
        ("pdf", "https://europepmc.org/articles/pmc5815332?pdf=render", "published",
         "repository", False),
        ("landing", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC5815332", "published",
         "repository", False),
        ("pdf", "https://digitalcommons.unl.edu/cgi/viewcontent.cgi?article=1143&context=scholcom",
         "submitted", "repository", False),
        ("pdf", "https://papyrus.bib.umontreal.ca/xmlui/bitstream/1866/23242/1/peerj-06-4375.pdf",
         "submitted", "repository", False)]


def test_crossref_links_keep_text_mining_copies_and_drop_similarity_checking():
    path = next(p for p in shared_path("fixtures", "http", "crossref").iterdir()
                if b"archive\\/2011\\/134631.pdf" in p.read_bytes())
    items = json.loads(path.read_text())["message"]["items"]
    message = next(i for i in items if i["DOI"] == "10.5402/2011/134631")
    assert [(x.kind, x.url, x.version, x.licence) for x in work_links(message)] == [
        ("pdf", "http://downloads.hindawi.com/archive/2011/134631.pdf", "published",
         "http://creativecommons.org/licenses/by/3.0/"),
        ("xml", "http://downloads.hindawi.com/archive/2011/134631.xml", "published",
         "http://creativecommons.org/licenses/by/3.0/")]


# --- find, fetch, attach ----------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    w = FullTextWorld()
    yield w
    w.stop()


@pytest.fixture
def ids(store):
    return full_text_store(store, FullTextWorld.CASES)


def _find(store, world):
    with connect(Settings(email=EMAIL, base_urls=world.base_urls, **FAST)) as s:
        return find(store, s, efetch_url=world.base_urls["pubmed"] + "/efetch.fcgi")


def _fetch(store, db_path, **kw):
    downloader = Downloader(Settings(**FAST), max_bytes=CAP_BYTES, max_seconds=10)
    try:
        return fetch(store, fulltext_dir(db_path), downloader, **kw)
    finally:
        downloader.close()


def test_find_logs_every_location_and_says_which_records_have_none(store, world, ids):
    got = _find(store, world)
    assert got.looked_up == 9
    assert sorted(got.without) == [ids["10.1000/nothing"]]
    assert got.landing_only == (ids["10.1000/landing"],)
    assert got.by_service == {"unpaywall": 8, "pmc": 0, "openalex": 0, "crossref": 0}
    r = retrievals(store)
    assert r[ids["10.1000/good"]].state == "sought"
    assert [dict(x) for x in r[ids["10.1000/good"]].locations] == [
        {"service": "unpaywall", "url": world.file_url("good.pdf"), "kind": "pdf",
         "version": "published", "licence": "cc-by", "host_type": "repository", "best": True}]
    assert ids["excluded"] not in r
    # a rerun asks nothing: every record was looked up
    assert _find(store, world).looked_up == 0


def test_fetch_names_each_failure_keeps_only_whole_checked_files_and_a_rerun_fetches_nothing(
        store, world, ids, db_path):
    _find(store, world)
    got = _fetch(store, db_path)
    by_id = {o.record_id: o for o in got.outcomes}
    msg = {doi: (by_id[rid].status, by_id[rid].message) for doi, rid in ids.items()
           if rid in by_id}
    url = world.file_url
    assert msg == {
        "10.1000/good": ("retrieved", f"Unpaywall PDF from {url('good.pdf')}"),
        "10.1000/scan": ("retrieved", f"Unpaywall PDF from {url('scan.pdf')}"),
        "10.1000/login": ("not-retrieved", "the open copies failed: Unpaywall PDF: an HTML page "
                                           "(a login, cookie or landing page) instead of the "
                                           "full text"),
        "10.1000/gone": ("not-retrieved", "the open copies failed: Unpaywall PDF: the link is "
                                          "broken (HTTP 404)"),
        "10.1000/loop": ("not-retrieved", "the open copies failed: Unpaywall PDF: the link "
                                          "redirects in a loop"),
        "10.1000/huge": ("not-retrieved", "the open copies failed: Unpaywall PDF: the file is "
                                          "12 KB, over the 4 KB cap"),
        "10.1000/gif": ("not-retrieved", "the open copies failed: Unpaywall PDF: not a PDF (it "
                                         "does not start with the PDF signature)"),
        "10.1000/nothing": ("not-retrieved", "no open copy found: none of the services asked "
                                             "knows its identifier (Unpaywall, OpenAlex, "
                                             "Crossref); check the DOI or PMID"),
        "10.1000/landing": ("not-retrieved", "no open PDF found, only a landing page to read "
                                             "it on"),
    }
    assert by_id[ids["10.1000/scan"]].warning == ("the PDF has no text layer (a scan?): it can "
                                                  "be read, not searched")
    folder = fulltext_dir(db_path)
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2 and all(not f.startswith(".") for f in files)
    good = by_id[ids["10.1000/good"]]
    assert good.file == f"{ids['10.1000/good']}-{good.sha256}.pdf" and good.file in files
    r = retrievals(store)
    assert (r[ids["10.1000/good"]].state, r[ids["10.1000/good"]].source) == ("retrieved",
                                                                             "unpaywall")
    assert r[ids["10.1000/gone"]].reason == msg["10.1000/gone"][1]
    assert fulltext_sources(store) == {"unpaywall": 2}
    served = len(world.server.requests_to("/files/"))
    again = _fetch(store, db_path)
    assert (again.outcomes, again.already) == ((), 9)
    assert len(world.server.requests_to("/files/")) == served


def test_a_server_error_leaves_the_record_for_the_next_run(store, world, ids, db_path):
    from cluster.demo.loopback import Fault

    _find(store, world)
    world.server.fail_always("/files/", Fault("503"))
    try:
        got = _fetch(store, db_path, only=[ids["10.1000/good"]])
    finally:
        world.server.heal("/files/")
    assert [(o.status, o.message) for o in got.outcomes] == [
        ("failed", "the open copies failed: Unpaywall PDF: the server answered HTTP 503")]
    assert retrievals(store)[ids["10.1000/good"]].state == "sought"
    assert [o.status for o in _fetch(store, db_path, only=[ids["10.1000/good"]]).outcomes] == [
        "retrieved"]


def test_report_counts_full_texts_per_service_and_by_hand(store, world, ids, db_path, tmp_path):
    from db.report import methods_report

    _find(store, world)
    _fetch(store, db_path)
    pdf = tmp_path / "from-the-library.pdf"
    pdf.write_bytes(pdf_for("A report"))
    attach_file(store, fulltext_dir(db_path), ids["10.1000/gone"], pdf)
    text = methods_report(store, {})
    assert ("## Full texts\n\nReports sought: 9; full texts retrieved: 3 (2 from Unpaywall; 1 "
            "obtained by hand (library, author)); not retrieved: 6. Open-access copies were "
            "looked up for 9 records in Unpaywall, PubMed Central, OpenAlex and Crossref.\n"
            ) in text


def test_attach_one_file_by_hand_and_refuse_what_is_not_a_report(store, ids, db_path, tmp_path):
    pdf = tmp_path / "smith2019.pdf"
    pdf.write_bytes(pdf_for("A report"))
    got = attach_file(store, fulltext_dir(db_path), ids["10.1000/gone"], pdf, reviewer="ann")
    r = retrievals(store)[ids["10.1000/gone"]]
    assert (r.state, r.source, r.file) == ("retrieved", "hand", got.file)
    assert (fulltext_dir(db_path) / got.file).read_bytes() == pdf.read_bytes()
    page = tmp_path / "login.pdf"
    page.write_bytes(b"<html><body>Sign in</body></html>")
    with pytest.raises(AttachError) as exc:
        attach_file(store, fulltext_dir(db_path), ids["10.1000/good"], page)
    assert str(exc.value) == (f"{page} is an HTML page (a login, cookie or landing page) instead "
                              f"of the full text: attach the PDF of the report itself.")
    with pytest.raises(AttachError, match=f"^Record {ids['excluded']} is not at the full-text "
                                          f"stage"):
        attach_file(store, fulltext_dir(db_path), ids["excluded"], pdf)
    assert fulltext_sources(store) == {"hand": 1}


def test_attach_folder_matches_by_doi_pmid_title_metadata_and_first_page(store, ids, db_path,
                                                                        tmp_path):
    with store.transaction():
        pm = store.add_record(Record(title="Short", pmid="31234567", year=2021))
    for who in ("ann", "bob"):
        decide(store, pm, who, "title-abstract", "include")
    lib = tmp_path / "library"
    lib.mkdir()
    cases = FullTextWorld.CASES
    (lib / "10.1000_good.pdf").write_bytes(pdf_for("Anything"))
    (lib / "PMID-31234567.pdf").write_bytes(pdf_for("Anything else"))
    (lib / "Empathy workshops for junior doctors - a pilot trial.pdf").write_bytes(pdf_for("x"))
    (lib / "scan0001.pdf").write_bytes(make_pdf(["no identifiers here"],
                                                subject="doi:10.1000/loop"))
    (lib / "download(3).pdf").write_bytes(make_pdf([f"Journal of Care 12(3)\n\n"
                                                    f"{cases['10.1000/huge'][0]}\n\nAbstract"]))
    (lib / "notes.pdf").write_bytes(pdf_for("Minutes of the team meeting"))
    (lib / "page.pdf").write_bytes(b"<!DOCTYPE html><html>Access denied</html>")
    (lib / "readme.txt").write_text("not looked at")
    got = attach_folder(store, fulltext_dir(db_path), lib)
    assert {(a.record_id, Path(a.source_file).name, a.matched_by) for a in got.attached} == {
        (ids["10.1000/good"], "10.1000_good.pdf", "DOI in the file name"),
        (pm, "PMID-31234567.pdf", "PMID in the file name"),
        (ids["10.1000/gone"], "Empathy workshops for junior doctors - a pilot trial.pdf",
         "title as the file name"),
        (ids["10.1000/loop"], "scan0001.pdf", "DOI in the PDF's metadata"),
        (ids["10.1000/huge"], "download(3).pdf", "title in the first pages")}
    assert got.unmatched == {
        "notes.pdf": "no record at full text matches its name, metadata or first page (or that "
                     "record has a copy already)",
        "page.pdf": "it is an HTML page (a login, cookie or landing page) instead of the full "
                    "text"}
    assert fulltext_sources(store) == {"hand": 5}


def test_check_file_tells_damaged_and_scanned_pdfs_and_pmc_xml(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer <<>>\n")
    with pytest.raises(NotFullText, match="^a damaged PDF that cannot be read"):
        check_file(broken)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(pdf_for("x", text=False))
    assert (check_file(scan).kind, check_file(scan).has_text) == ("pdf", False)
    xml = tmp_path / "a.xml"
    xml.write_bytes(b'<?xml version="1.0"?>\n<pmc-articleset><article><front><article-meta>'
                    b'<title-group><article-title>A <italic>title</italic></article-title>'
                    b'</title-group></article-meta></front><body><p>Text</p></body></article>'
                    b'</pmc-articleset>')
    assert (check_file(xml).kind, check_file(xml).title) == ("xml", "A title")
    front = tmp_path / "front.xml"
    front.write_bytes(b'<?xml version="1.0"?>\n<pmc-articleset><article><front/></article>'
                      b'</pmc-articleset>')
    with pytest.raises(NotFullText, match="^PMC XML without the article's body"):
        check_file(front)


def test_no_output_is_written_into_the_full_text_folder(db_path):
    folder = fulltext_dir(db_path)
    folder.mkdir()
    with pytest.raises(OutputError) as exc:
        write_file(folder / "12-abc.pdf", "x", store_files(db_path))
    assert str(exc.value) == (f"{folder / '12-abc.pdf'} is in the full-text folder of the review "
                              f"store {db_path}: choose a file outside it for the output.")


# --- the commands -------------------------------------------------------------------------


def test_cli_find_fetch_list_and_the_old_spelling(run, store, world, ids, monkeypatch, db_path):
    for service, url in world.base_urls.items():
        monkeypatch.setenv(f"CLUSTER_{service.upper()}_URL", url)
    monkeypatch.setenv("CLUSTER_EMAIL", EMAIL)
    monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
    monkeypatch.setenv("CLUSTER_RATE_LIMITS", "unpaywall=1000,pmc=1000,openalex=1000,"
                                              "crossref=1000,download=1000")
    store.close()
    out = json.loads(run("fulltext", "find", "--json", "-q").output)
    assert (out["looked_up"], out["without"]) == (9, [ids["10.1000/nothing"]])
    monkeypatch.delenv("CLUSTER_EMAIL")
    assert run("fulltext", "find", "-q", "--refresh", "--record",
               str(ids["10.1000/good"])).output == (
        "Looked up 1 record(s) (0 done before): 0 with an open PDF or XML, 0 with a landing "
        "page only, 1 with no open copy.\n"
        "  Unpaywall was not asked: it needs a contact e-mail (set CLUSTER_EMAIL).\n")
    monkeypatch.setenv("CLUSTER_EMAIL", EMAIL)
    run("fulltext", "find", "-q", "--refresh", "--record", str(ids["10.1000/good"]))
    out = run("fulltext", "fetch", "-q", "--max-mb", str(CAP_BYTES / 1024 / 1024)).output
    assert f"Record {ids['10.1000/good']}: retrieved (Unpaywall PDF from " in out
    assert (f"Record {ids['10.1000/loop']}: not retrieved: the open copies failed: Unpaywall "
            f"PDF: the link redirects in a loop.") in out
    assert out.rstrip().endswith("Retrieved 2 (Unpaywall 2), not retrieved 7, to try again 0; "
                                 "0 done before.")
    assert EMAIL not in (db_path.read_bytes() + out.encode()).decode("latin-1")
    listed = json.loads(run("fulltext", "list", "--json").output)
    assert {x["record"]: x["state"] for x in listed}[ids["10.1000/scan"]] == "retrieved"
    assert run("fulltext", str(ids["10.1000/nothing"]), "--retrieved").output == (
        f"Record {ids['10.1000/nothing']}: full text retrieved.\n")
    err = run("fulltext", "attach", "--folder", str(db_path.parent / "none"), expect=1)
    assert err.output.strip() == f"Error: {db_path.parent / 'none'} is not a folder: give the folder holding the PDFs."
