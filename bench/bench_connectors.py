"""Benchmark: metadata for 1,000 PMIDs and 1,000 DOIs over loopback HTTP, real rate limits.

A loopback server generates valid answers for any id (efetch PubmedArticleSet
XML, Crossref work-lists for `filter=doi:...`, single works), so the numbers
measure the connectors and the HTTP layer: requests sent, wall time, and a
rerun served from the cache. The baseline is the same lookup one id per
request (as a client without batching would do), timed on a sample and
scaled to 1,000 ids. A last run injects faults (429, 500, truncated bodies, HTML, resets,
slow answers) into 35% of answers to show that every record still arrives.

Run: python bench/bench_connectors.py
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.http import Settings  # noqa: E402
from cluster.demo.loopback import LoopbackServer, Request, Response  # noqa: E402
from connectors.services import connect  # noqa: E402

N = 1000
SAMPLE = 30  # ids looked up one by one for the baseline
DOCTYPE = (b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD '
           b'PubMedArticle, 1st January 2025//EN" '
           b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n')


def article(pmid: str) -> str:
    n = int(pmid)
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
        f'</PMID><Article PubModel="Print"><Journal><ISSN IssnType="Print">1234-5678</ISSN>'
        f'<JournalIssue CitedMedium="Print"><Volume>{n % 90 + 1}</Volume><Issue>{n % 12 + 1}'
        f'</Issue><PubDate><Year>{1990 + n % 35}</Year></PubDate></JournalIssue>'
        f'<Title>Journal of Generated Results</Title></Journal>'
        f'<ArticleTitle>Generated article {pmid} on <i>testing</i>.</ArticleTitle>'
        f'<Pagination><MedlinePgn>{n % 500 + 1}-{n % 500 + 9}</MedlinePgn></Pagination>'
        f'<Abstract><AbstractText Label="BACKGROUND">Background of {pmid}.</AbstractText>'
        f'<AbstractText Label="RESULTS">Results of {pmid}.</AbstractText></Abstract>'
        f'<AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>Author{n % 97}</LastName>'
        f'<ForeName>Ann</ForeName><Initials>A</Initials><Identifier Source="ORCID">'
        f'0000-0002-1825-0097</Identifier><AffiliationInfo><Affiliation>Generated University.'
        f'</Affiliation></AffiliationInfo></Author><Author ValidYN="Y"><CollectiveName>'
        f'Generated Group</CollectiveName></Author></AuthorList><Language>eng</Language>'
        f'<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType>'
        f'</PublicationTypeList></Article></MedlineCitation><PubmedData><ArticleIdList>'
        f'<ArticleId IdType="pubmed">{pmid}</ArticleId><ArticleId IdType="doi">10.5555/gen.'
        f'{pmid}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>')


def efetch(req: Request) -> Response:
    ids = [i for v in req.get_all("id") for i in v.split(",") if i]
    body = DOCTYPE + b"<PubmedArticleSet>" + "".join(article(i) for i in ids).encode() + \
        b"</PubmedArticleSet>\n"
    return Response(200, body, {"X-RateLimit-Limit": "3"}, "text/xml; charset=UTF-8")


def work(doi: str) -> dict:
    n = sum(map(ord, doi))
    return {"DOI": doi, "type": "journal-article", "title": [f"Generated work {doi}"],
            "author": [{"given": "Ben", "family": f"Writer{n % 89}", "sequence": "first",
                        "ORCID": "https://orcid.org/0000-0002-1825-0097",
                        "affiliation": [{"name": "Generated Institute"}]}],
            "container-title": ["Generated Letters"], "issued": {"date-parts": [[2000 + n % 25]]},
            "volume": str(n % 50), "page": f"{n % 300}-{n % 300 + 7}", "language": "en",
            "reference-count": 2, "reference": [{"key": "r1", "DOI": "10.5555/ref.1"},
                                                {"key": "r2", "unstructured": "A. Book. 1999."}]}


CROSSREF_HEADERS = {"X-Rate-Limit-Limit": "5", "X-Rate-Limit-Interval": "1s"}


def crossref(req: Request) -> Response:
    if req.path.startswith("/crossref/works/"):
        doi = req.path[len("/crossref/works/"):]
        return Response(200, json.dumps({"status": "ok", "message-type": "work",
                                         "message": work(doi)}).encode(), CROSSREF_HEADERS)
    dois = [f[4:] for f in (req.get("filter") or "").split(",") if f.startswith("doi:")]
    items = [work(d) for d in dois]
    return Response(200, json.dumps({"status": "ok", "message-type": "work-list", "message": {
        "total-results": len(items), "items-per-page": len(items), "items": items}}).encode(),
        CROSSREF_HEADERS)


def run(server: LoopbackServer, cache: Path | None, pmids: list[str], dois: list[str], *,
        batch: int = 200, **settings) -> dict:
    base = {"pubmed": server.url + "/ncbi", "crossref": server.url + "/crossref"}
    before = len(server.log)
    with connect(Settings(base_urls=base, cache_path=cache, **settings)) as s:
        t0 = time.perf_counter()
        pub = s.pubmed.fetch(pmids, batch_size=batch)
        t1 = time.perf_counter()
        cr = s.crossref.works(dois, batch_size=batch)
        t2 = time.perf_counter()
        sent = dict(s.http.network_requests)
    assert len(pub.records) == len(pmids) and len(cr.records) == len(dois), (
        len(pub.records), len(cr.records), pub.failed, cr.failed)
    return {"pubmed_requests": sent["pubmed"], "crossref_requests": sent["crossref"],
            "pubmed_s": t1 - t0, "crossref_s": t2 - t1, "server_log": len(server.log) - before}


def main() -> None:
    pmids = [str(30_000_000 + i) for i in range(N)]
    dois = [f"10.5555/gen.{i}" for i in range(N)]
    server = LoopbackServer({"/ncbi": efetch, "/crossref": crossref}).start()
    target = math.ceil(N / 200)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cold, warm = [], []
            for k in range(3):
                cache = Path(tmp) / f"cache{k}.sqlite"
                cold.append(run(server, cache, pmids, dois))
                warm.append(run(server, cache, pmids, dois))
            single = run(server, None, pmids[:SAMPLE], dois[:SAMPLE], batch=1)
            server.fault_rate = 0.35
            server.fault_kinds = ("429", "500", "truncate", "slow", "html", "reset")
            faulty = run(server, None, [str(40_000_000 + i) for i in range(N)],
                         [f"10.5555/other.{i}" for i in range(N)], backoff_base=0.2,
                         timeout=(5, 0.25), max_retries=8)
            server.fault_rate = 0.0
    finally:
        server.stop()

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    print(f"Metadata for {N:,} PMIDs (PubMed efetch) and {N:,} DOIs (Crossref filter=doi), "
          f"real rate limits (NCBI 3/s; Crossref from X-Rate-Limit headers, 5/s)")
    print(f"target: <= {target} requests per service cold, 0 requests on a cached rerun")
    print()
    print(f"{'run':<34}{'PubMed req':>11}{'PubMed s':>10}{'Crossref req':>14}{'Crossref s':>12}")
    print(f"{'cold, batched (median of 3)':<34}{med(cold, 'pubmed_requests'):>11.0f}"
          f"{med(cold, 'pubmed_s'):>10.2f}{med(cold, 'crossref_requests'):>14.0f}"
          f"{med(cold, 'crossref_s'):>12.2f}")
    print(f"{'rerun from cache (median of 3)':<34}{med(warm, 'pubmed_requests'):>11.0f}"
          f"{med(warm, 'pubmed_s'):>10.2f}{med(warm, 'crossref_requests'):>14.0f}"
          f"{med(warm, 'crossref_s'):>12.2f}")
    scale = N / SAMPLE
    print(f"{'baseline: one id per request':<34}{single['pubmed_requests'] * scale:>11.0f}"
          f"{single['pubmed_s'] * scale:>10.1f}{single['crossref_requests'] * scale:>14.0f}"
          f"{single['crossref_s'] * scale:>12.1f}   (measured on {SAMPLE} ids, scaled)")
    print(f"{'cold, 35% of answers faulty':<34}{faulty['pubmed_requests']:>11.0f}"
          f"{faulty['pubmed_s']:>10.2f}{faulty['crossref_requests']:>14.0f}"
          f"{faulty['crossref_s']:>12.2f}   (all {2 * N:,} records arrived)")
    print()
    cold_total = med(cold, "pubmed_s") + med(cold, "crossref_s")
    base_total = (single["pubmed_s"] + single["crossref_s"]) * scale
    print(f"speed-up of batching over one id per request: {base_total / cold_total:.0f}x "
          f"({base_total:.0f} s -> {cold_total:.1f} s)")
    warm_total = med(warm, "pubmed_s") + med(warm, "crossref_s")
    warm_requests = med(warm, "pubmed_requests") + med(warm, "crossref_requests")
    print(f"cached rerun vs cold: {warm_total / cold_total:.2f} of the time, "
          f"requests {warm_requests:.0f}")
    ok = (med(cold, "pubmed_requests") <= target and med(cold, "crossref_requests") <= target
          and med(warm, "pubmed_requests") == 0 and med(warm, "crossref_requests") == 0)
    print(f"targets met: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
