"""The four services a generated world answers as: PubMed E-utilities,
Crossref, OpenAlex and OpenCitations, in their real formats, on the demo's
loopback server (`serve_world`).

`World.broken` holds (service, id) pairs whose requests answer 500 for as long
as they stay in the set, to drill per-seed failures.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterable
from urllib.parse import unquote
from xml.sax.saxutils import escape

from cluster.demo.fulltext import FullTextServices, pmcid
from cluster.demo.loopback import LoopbackServer, Request, Response
from cluster.demo.query import PUBMED_LANGUAGES, matches
from cluster.demo.world import JOURNALS, PLACES, Work, World, WorldAuthor, bare_doi

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PUBMED_DOCTYPE = ('<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January '
                  '2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')
ESEARCH_DOCTYPE = ('<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
                   '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">')
ELINK_DOCTYPE = ('<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
                 '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">')
SEED_SCORE = 2147483647  # PubMed lists the seed first with the int32 maximum



class WorldServices:
    """Handlers answering for one world like the four services."""

    def __init__(self, world: World):
        self.world = world
        #: the history server: each esearch with usehistory=y keeps its whole id list
        self._history: dict[str, list[str]] = {}
        self._history_lock = threading.Lock()
        self.fulltext = FullTextServices(world)

    def register(self, server: LoopbackServer) -> dict[str, str]:
        """Add this world's routes to `server`; returns the path prefix per service."""
        prefixes = {"pubmed": "/pubmed", "crossref": "/crossref", "openalex": "/openalex",
                    "opencitations": "/opencitations", "unpaywall": "/unpaywall", "pmc": "/pmc"}
        server.route("/pubmed/", self._pubmed)
        server.route("/crossref/", self._crossref)
        server.route("/openalex/", self._openalex)
        server.route("/opencitations/", self._opencitations)
        server.route("/unpaywall/", self.fulltext.unpaywall)
        server.route("/pmc/", self.fulltext.pmc)
        server.route("/files/", self.fulltext.files)
        return prefixes

    def _is_broken(self, service: str, idents: Iterable[str]) -> bool:
        if not self.world.broken:
            return False
        return any((service, str(i).lower()) in self.world.broken for i in idents)

    # -- PubMed E-utilities
    def _pubmed(self, req: Request) -> Response:
        endpoint = _tail(req.path, "/pubmed/")
        if endpoint.startswith("esearch"):
            return self._esearch(req)
        if endpoint.startswith("efetch"):
            ids = _split_ids(req.get_all("id"))
            if not ids and req.get("WebEnv"):
                with self._history_lock:
                    kept = self._history.get(req.get("WebEnv") or "")
                if kept is None or req.get("query_key") != "1":
                    return _xml(b'<?xml version="1.0" encoding="UTF-8" ?>\n<eFetchResult><ERROR>'
                                b"Unable to obtain query #1</ERROR></eFetchResult>")
                start = int(req.get("retstart") or 0)
                ids = kept[start:start + int(req.get("retmax") or 20)]
            if self._is_broken("pubmed", ids):
                return _server_error()
            if req.get("db") == "pmc":
                return _xml(self.fulltext.pmc_xml(ids))
            return _xml(self.pubmed_xml(ids))
        if endpoint.startswith("elink"):
            ids = req.get_all("id")
            if self._is_broken("pubmed", _split_ids(ids)):
                return _server_error()
            return _xml(self._elink(ids, req.get("cmd") or "neighbor", req.get("linkname")))
        return Response(404, b"<html><body>Not found</body></html>", content_type="text/html")

    def pubmed_xml(self, pmids: Iterable[str]) -> bytes:
        parts = ['<?xml version="1.0" ?>', PUBMED_DOCTYPE, "<PubmedArticleSet>"]
        for pmid in pmids:
            w = self.world.by_pmid.get(pmid.strip())
            if w is not None:
                parts.append(self._pubmed_article(w))
        parts.append("</PubmedArticleSet>")
        return "\n".join(parts).encode("utf-8")

    def _pubmed_article(self, w: Work) -> str:
        e = escape
        authors = []
        for ak in w.author_keys:
            a = self.world.authors[ak]
            ident = f'<Identifier Source="ORCID">{a.orcid}</Identifier>' if a.orcid else ""
            aff = a.affiliation + (f". {a.email}" if a.email and ak == w.author_keys[0] else "")
            authors.append(
                f'<Author ValidYN="Y"><LastName>{e(a.family)}</LastName><ForeName>{e(a.given)}</ForeName>'
                f"<Initials>{a.initials}</Initials>{ident}<AffiliationInfo><Affiliation>{e(aff)}"
                f"</Affiliation></AffiliationInfo></Author>")
        types = {
            "journal-article": ['<PublicationType UI="D016428">Journal Article</PublicationType>'],
            "review": ['<PublicationType UI="D016428">Journal Article</PublicationType>',
                       '<PublicationType UI="D016454">Review</PublicationType>'],
            "editorial": ['<PublicationType UI="D016421">Editorial</PublicationType>'],
        }.get(w.kind, ['<PublicationType UI="D016428">Journal Article</PublicationType>'])
        title = w.title + "."
        vernacular = ""
        if w.language not in ("en", None):
            vernacular = f"<VernacularTitle>{e(w.title.strip('[]'))} ({w.language}).</VernacularTitle>"
        abstract = ""
        if w.abstract and w.language in ("en", None):
            abstract = f"<Abstract><AbstractText>{e(w.abstract)}</AbstractText></Abstract>"
        month = MONTHS[w.key % 12]
        article_date = ""
        if w.ahead_of_print:
            article_date = (f'<ArticleDate DateType="Electronic"><Year>{w.year - 1}</Year>'
                            f"<Month>12</Month><Day>01</Day></ArticleDate>")
        doi = (w.doi.upper() if w.doi_upper else w.doi) if w.doi and not w.pubmed_no_doi else None
        eloc = f'<ELocationID EIdType="doi" ValidYN="Y">{e(doi)}</ELocationID>' if doi else ""
        ids = [f'<ArticleId IdType="pubmed">{w.pmid}</ArticleId>']
        if doi:
            ids.append(f'<ArticleId IdType="doi">{e(doi)}</ArticleId>')
        if w.in_pmc:
            ids.append(f'<ArticleId IdType="pmc">{pmcid(w)}</ArticleId>')
        start, _, end = w.pages.partition("-")
        lang = PUBMED_LANGUAGES.get(w.language or "", "und")
        return (
            f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{w.pmid}</PMID>'
            f'<Article PubModel="{"Print-Electronic" if w.ahead_of_print else "Print"}"><Journal>'
            f'<ISSN IssnType="Electronic">{1000 + JOURNALS.index(w.journal) if w.journal in JOURNALS else 1999}-{w.key % 9000 + 1000:04d}</ISSN>'
            f'<JournalIssue CitedMedium="Internet"><Volume>{w.volume}</Volume><Issue>{w.issue}</Issue>'
            f"<PubDate><Year>{w.year}</Year><Month>{month}</Month></PubDate></JournalIssue>"
            f"<Title>{e(w.journal)}</Title><ISOAbbreviation>{e(_abbrev(w.journal))}</ISOAbbreviation></Journal>"
            f"<ArticleTitle>{e(title)}</ArticleTitle><Pagination><StartPage>{start}</StartPage>"
            f"<EndPage>{end}</EndPage><MedlinePgn>{w.pages}</MedlinePgn></Pagination>{eloc}{abstract}"
            f'<AuthorList CompleteYN="Y">{"".join(authors)}</AuthorList><Language>{lang}</Language>'
            f'<PublicationTypeList>{"".join(types)}</PublicationTypeList>{vernacular}{article_date}</Article>'
            f"<MedlineJournalInfo><Country>United States</Country><MedlineTA>{e(_abbrev(w.journal))}</MedlineTA>"
            f"</MedlineJournalInfo></MedlineCitation><PubmedData><History>"
            f'<PubMedPubDate PubStatus="entrez"><Year>{w.year}</Year><Month>1</Month><Day>2</Day></PubMedPubDate>'
            f"</History><PublicationStatus>{'aheadofprint' if w.ahead_of_print else 'ppublish'}</PublicationStatus>"
            f"<ArticleIdList>{''.join(ids)}</ArticleIdList></PubmedData></PubmedArticle>"
        )

    def _esearch(self, req: Request) -> Response:
        term = req.get("term") or ""
        if self._is_broken("pubmed", [term.lower()]):
            return _server_error()
        retmax = int(req.get("retmax") or 20)
        retstart = int(req.get("retstart") or 0)
        mindate, maxdate = req.get("mindate"), req.get("maxdate")
        hits = [w for w in self.world.works if w.pmid and matches(self.world, w, term)]
        if mindate:
            hits = [w for w in hits if w.year >= int(mindate[:4])]
        if maxdate:
            hits = [w for w in hits if w.year <= int(maxdate[:4])]
        # "relevance" here: newest first, then PMID, a stable stand-in for Best Match
        hits.sort(key=lambda w: (-w.year, w.pmid))
        ids = [w.pmid for w in hits[retstart:retstart + retmax]]
        history = ""
        if req.get("usehistory") == "y":
            with self._history_lock:
                webenv = f"MCID_world{len(self._history) + 1:06d}"
                self._history[webenv] = [w.pmid for w in hits if w.pmid]
            history = f"<QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv>"
        body = [f'<?xml version="1.0" encoding="UTF-8" ?>', ESEARCH_DOCTYPE,
                f"<eSearchResult><Count>{len(hits)}</Count><RetMax>{len(ids)}</RetMax>"
                f"<RetStart>{retstart}</RetStart>{history}<IdList>"]
        body += [f"<Id>{i}</Id>" for i in ids]
        body.append(f"</IdList><TranslationSet/><QueryTranslation>{escape(term)}</QueryTranslation>"
                    "</eSearchResult>")
        return _xml("\n".join(body).encode("utf-8"))

    def _elink(self, ids: list[str], cmd: str, linkname: str | None) -> bytes:
        groups = [[i] for i in _split_ids(ids)] if len(ids) > 1 else [_split_ids(ids)]
        out = ['<?xml version="1.0" encoding="UTF-8" ?>', ELINK_DOCTYPE, "<eLinkResult>"]
        names = [linkname] if linkname else ["pubmed_pubmed", "pubmed_pubmed_citedin",
                                             "pubmed_pubmed_refs"]
        for group in groups:
            out.append("<LinkSet><DbFrom>pubmed</DbFrom><IdList>")
            out += [f"<Id>{escape(i)}</Id>" for i in group]
            out.append("</IdList>")
            for name in names:
                links = self._links(group, name)
                if not links:
                    continue
                with_score = cmd == "neighbor_score" and name == "pubmed_pubmed"
                out.append(f"<LinkSetDb><DbTo>pubmed</DbTo><LinkName>{name}</LinkName>")
                for pmid, score in links:
                    out.append(f"<Link><Id>{pmid}</Id>" + (f"<Score>{score}</Score>" if with_score else "")
                               + "</Link>")
                out.append("</LinkSetDb>")
            out.append("</LinkSet>")
        out.append("</eLinkResult>")
        return "\n".join(out).encode("utf-8")

    def _links(self, pmids: list[str], name: str) -> list[tuple[str, int]]:
        merged: dict[str, int] = {}
        for pmid in pmids:
            w = self.world.by_pmid.get(pmid)
            if w is None:
                continue
            if name == "pubmed_pubmed":
                pairs = [(w.pmid, SEED_SCORE)] + [(self.world.works[k].pmid, s) for k, s in self.world.neighbours(w.key)]
            elif name == "pubmed_pubmed_citedin":
                pairs = [(self.world.works[k].pmid, 0) for k in sorted(self.world.cited_by(w.key), reverse=True)
                         if self.world.works[k].pmid and self.world.works[k].in_pmc]
            elif name == "pubmed_pubmed_refs":
                pairs = [(self.world.works[k].pmid, 0) for k in w.references
                         if self.world.works[k].pmid] if w.in_pmc else []
            else:
                pairs = []
            for p, s in pairs:
                if p is not None:  # the comprehensions above keep only works with a PMID
                    merged.setdefault(p, s)
        return list(merged.items())

    # -- Crossref
    def _crossref(self, req: Request) -> Response:
        rest = _tail(req.path, "/crossref/")
        if rest.startswith("works/"):
            doi = bare_doi(unquote(rest[len("works/"):]))
            w = self.world.by_doi.get(doi)
            if self._is_broken("crossref", [doi]):
                return _server_error()
            if w is None:
                return Response(404, b"Resource not found.", content_type="text/plain")
            return _json({"status": "ok", "message-type": "work", "message-version": "1.0.0",
                          "message": self.crossref_work(w)})
        if rest.rstrip("/") == "works":
            filters = _parse_filters(req.get("filter") or "", sep=",", multi=True)
            rows = int(req.get("rows") or 20)
            offset = int(req.get("offset") or 0)
            works = [w for w in self.world.works if w.doi]
            if "doi" in filters:
                wanted = [bare_doi(d) for d in filters["doi"]]
                if self._is_broken("crossref", wanted):
                    return _server_error()
                works = [self.world.by_doi[d] for d in dict.fromkeys(wanted) if d in self.world.by_doi]
            if "orcid" in filters:
                orcids = {o.rsplit("/", 1)[-1].upper() for o in filters["orcid"]}
                works = [w for w in works if any((self.world.authors[k].orcid or "") in orcids
                                                 for k in w.author_keys)]
            if "type" in filters:
                works = [w for w in works if _crossref_type(w) in filters["type"]]
            author_q = (req.get("query.author") or "").lower().split()
            if author_q:
                works = [w for w in works if any(all(t in f"{self.world.authors[k].given} {self.world.authors[k].family}".lower()
                                                     for t in author_q) for k in w.author_keys)]
            biblio = (req.get("query.bibliographic") or req.get("query") or "").lower().split()
            if biblio:
                scored = [(sum(t in w.title.lower() for t in biblio), w) for w in works]
                works = [w for s, w in sorted(scored, key=lambda t: (-t[0], t[1].key)) if s > 0]
            page = works[offset:offset + rows]
            return _json({"status": "ok", "message-type": "work-list", "message-version": "1.0.0",
                          "message": {"facets": {}, "total-results": len(works),
                                      "items": [self.crossref_work(w) for w in page],
                                      "items-per-page": rows,
                                      "query": {"start-index": offset, "search-terms": None}}})
        return Response(404, b"Resource not found.", content_type="text/plain")

    def crossref_work(self, w: Work) -> dict[str, Any]:
        assert w.doi is not None
        year = w.year - 1 if w.ahead_of_print else w.year
        doi = w.doi.upper() if w.doi_upper else w.doi
        authors = []
        for i, ak in enumerate(w.author_keys):
            a = self.world.authors[ak]
            item: dict[str, Any] = {"given": a.given, "family": a.family,
                                    "sequence": "first" if i == 0 else "additional",
                                    "affiliation": [{"name": a.affiliation}] if i == 0 else []}
            if a.orcid:
                item["ORCID"] = f"https://orcid.org/{a.orcid}"
                item["authenticated-orcid"] = False
            authors.append(item)
        msg: dict[str, Any] = {
            "indexed": {"date-parts": [[2026, 6, 1]], "date-time": "2026-06-01T00:00:00Z",
                        "timestamp": 1780272000000},
            "reference-count": len(w.references), "publisher": "Generated Press",
            "issue": w.issue, "DOI": doi, "type": _crossref_type(w),
            "page": w.pages, "source": "Crossref", "is-referenced-by-count": len(self.world.cited_by(w.key)),
            "title": [w.title], "prefix": w.doi.split("/")[0], "volume": w.volume,
            "author": authors, "member": "99999",
            "published-online": {"date-parts": [[year, 3, 1]]},
            "container-title": [w.journal], "original-title": [],
            "issued": {"date-parts": [[year, 3, 1]]},
            "references-count": len(w.references), "URL": f"https://doi.org/{doi}",
            "ISSN": [f"{1000 + w.key % 9000:04d}-{w.key % 9000 + 1000:04d}"],
            "subject": [], "published": {"date-parts": [[year, 3, 1]]}, "score": 1,
        }
        if w.language is not None:
            msg["language"] = w.language
        if w.crossref_abstract and w.abstract:
            msg["abstract"] = f"<jats:p>{escape(w.abstract)}</jats:p>"
        if w.references:
            msg["reference"] = [self._crossref_ref(w, i, self.world.works[r]) for i, r in enumerate(w.references)]
        return msg

    def _crossref_ref(self, citing: Work, i: int, cited: Work) -> dict[str, Any]:
        ref: dict[str, Any] = {"key": f"{citing.doi}_ref{i + 1}"}
        lead = self.world.authors[cited.author_keys[0]]
        if cited.doi and cited.key not in citing.unstructured_refs:
            ref.update({"doi-asserted-by": "crossref", "DOI": cited.doi,
                        "article-title": cited.title, "author": f"{lead.initials} {lead.family}",
                        "year": str(cited.year), "journal-title": cited.journal,
                        "volume": cited.volume, "first-page": cited.pages.split("-")[0]})
            return ref
        if cited.key % 3 == 0:
            # only a family name survives: nothing to match on
            ref["author"] = lead.family
            return ref
        ref["unstructured"] = (f"{lead.family} {lead.initials}, et al. {cited.title}. "
                               f"{cited.journal}. {cited.year};{cited.volume}:{cited.pages}.")
        return ref

    # -- OpenAlex
    def _openalex(self, req: Request) -> Response:
        rest = _tail(req.path, "/openalex/")
        if rest.startswith("works/"):
            ident = unquote(rest[len("works/"):])
            if self._is_broken("openalex", [ident.lower()]):
                return _server_error()
            w = self._openalex_lookup(ident)
            if w is None:
                return _openalex_404()
            return _json(self.openalex_work(w, _host(req)))
        if rest.rstrip("/") == "works":
            filters = _parse_filters(req.get("filter") or "", sep=",", multi=False)
            per_page = min(200, int(req.get("per-page") or req.get("per_page") or 25))
            page = int(req.get("page") or 1)
            works = list(self.world.works)
            for name, values in filters.items():
                values = [v for v in values if v]
                probe = [v.lower() for v in values]
                if self._is_broken("openalex", probe):
                    return _server_error()
                if name in ("openalex", "ids.openalex", "openalex_id"):
                    keys = {normalize_w(v) for v in values}
                    works = [w for w in works if w.openalex in keys]
                elif name in ("doi", "ids.doi"):
                    dois = {bare_doi(v) for v in values}
                    works = [w for w in works if w.doi and w.doi.lower() in dois]
                elif name in ("pmid", "ids.pmid"):
                    pm = {v.rsplit("/", 1)[-1] for v in values}
                    works = [w for w in works if w.pmid in pm and not w.openalex_no_pmid]
                elif name in ("cites", "referenced_works"):
                    targets = {self.world.by_openalex[k].key for k in map(normalize_w, values) if k in self.world.by_openalex}
                    works = [w for w in works if targets & set(w.references)]
                elif name == "cited_by":
                    src = [self.world.by_openalex[k] for k in map(normalize_w, values) if k in self.world.by_openalex]
                    refs = {r for s in src for r in s.references}
                    works = [w for w in works if w.key in refs]
                elif name in ("authorships.author.id", "author.id"):
                    author_keys = {int(re.sub(r"\D", "", v.rsplit("/", 1)[-1])) - 5000000000
                                   for v in values}
                    works = [w for w in works if author_keys & set(w.author_keys)]
                elif name in ("authorships.author.orcid", "author.orcid"):
                    orcids = {v.rsplit("/", 1)[-1].upper() for v in values}
                    works = [w for w in works if any((self.world.authors[k].orcid or "") in orcids for k in w.author_keys)]
                elif name == "language":
                    works = [w for w in works if (w.language or "") in values]
                elif name == "type":
                    works = [w for w in works if _openalex_type(w) in values]
                else:
                    return _json({"error": f"Invalid query parameters error.",
                                  "message": f"{name} is not a valid field"}, status=400)
            works.sort(key=lambda w: (-w.year, w.key)) if any(k in filters for k in ("cites", "author.id", "authorships.author.id")) else None
            start = (page - 1) * per_page
            chunk = works[start:start + per_page]
            return _json({"meta": {"count": len(works), "db_response_time_ms": 12, "page": page,
                                   "per_page": per_page, "groups_count": None},
                          "results": [self.openalex_work(w, _host(req)) for w in chunk],
                          "group_by": []})
        if rest.startswith("authors/"):
            ident = rest[len("authors/"):]
            key = int(re.sub(r"\D", "", ident) or 0) - 5000000000
            if not 0 <= key < len(self.world.authors):
                return _openalex_404()
            return _json(self.openalex_author(self.world.authors[key]))
        if rest.rstrip("/") == "authors":
            filters = _parse_filters(req.get("filter") or "", sep=",", multi=False)
            found = list(self.world.authors)
            if "orcid" in filters:
                orcids = {v.rsplit("/", 1)[-1].upper() for v in filters["orcid"]}
                found = [a for a in found if a.orcid in orcids]
            return _json({"meta": {"count": len(found), "db_response_time_ms": 9, "page": 1,
                                   "per_page": 25, "groups_count": None},
                          "results": [self.openalex_author(a) for a in found[:25]], "group_by": []})
        return _openalex_404()

    def _openalex_lookup(self, ident: str) -> Work | None:
        ident = ident.strip()
        low = ident.lower()
        if low.startswith("pmid:"):
            w = self.world.by_pmid.get(low[5:].rsplit("/", 1)[-1])
            return None if w is None or w.openalex_no_pmid else w
        if low.startswith("doi:") or "doi.org/" in low or low.startswith("10."):
            return self.world.by_doi.get(bare_doi(ident))
        return self.world.by_openalex.get(normalize_w(ident))

    def openalex_work(self, w: Work, host: str = "http://127.0.0.1") -> dict[str, Any]:
        title = w.title.title() if w.openalex_title_case else w.title
        year = w.year - 1 if w.ahead_of_print else w.year
        authorships: list[dict[str, Any]] = []
        for i, ak in enumerate(w.author_keys):
            a = self.world.authors[ak]
            authorships.append({
                "author_position": "first" if i == 0 else ("last" if i == len(w.author_keys) - 1 else "middle"),
                "author": {"id": f"https://openalex.org/{a.openalex}", "display_name": f"{a.given} {a.family}",
                           "orcid": f"https://orcid.org/{a.orcid}" if a.orcid else None},
                "institutions": [{"id": f"https://openalex.org/I{4200000000 + PLACES.index(a.affiliation)}",
                                  "display_name": a.affiliation.split(",")[-1].strip(), "ror": None,
                                  "country_code": "GB", "type": "education", "lineage": []}],
                "countries": ["GB"], "is_corresponding": i == len(w.author_keys) - 1,
                "raw_author_name": f"{a.given} {a.family}",
                "raw_affiliation_strings": [a.affiliation],
                "affiliations": [{"raw_affiliation_string": a.affiliation, "institution_ids": []}],
            })
        source_type = "conference" if w.kind == "proceedings-article" else "journal"
        location = {"is_oa": False, "landing_page_url": f"https://doi.org/{w.doi}" if w.doi else None,
                    "pdf_url": None,
                    "source": {"id": f"https://openalex.org/S{1900000000 + len(w.journal)}",
                               "display_name": w.journal, "issn_l": None, "issn": None, "is_oa": False,
                               "type": source_type},
                    "license": None, "version": "publishedVersion", "is_accepted": True, "is_published": True}
        ids: dict[str, str] = {"openalex": f"https://openalex.org/{w.openalex}"}
        if w.doi:
            ids["doi"] = f"https://doi.org/{w.doi}"
        if w.pmid and not w.openalex_no_pmid:
            ids["pmid"] = f"https://pubmed.ncbi.nlm.nih.gov/{w.pmid}"
        return {
            "id": f"https://openalex.org/{w.openalex}",
            "doi": f"https://doi.org/{w.doi}" if w.doi else None,
            "title": title, "display_name": title, "publication_year": year,
            "publication_date": f"{year}-03-01", "ids": ids, "language": w.language,
            "primary_location": location, "type": _openalex_type(w),
            **({"type_crossref": _crossref_type(w)} if w.kind != "other" else {}), "indexed_in": ["crossref"] + (["pubmed"] if w.pmid else []),
            "authorships": authorships,
            "corresponding_author_ids": [f"https://openalex.org/{self.world.authors[w.author_keys[-1]].openalex}"],
            "cited_by_count": len(self.world.cited_by(w.key)),
            "biblio": {"volume": w.volume, "issue": w.issue, "first_page": w.pages.split("-")[0],
                       "last_page": w.pages.split("-")[-1]},
            "is_retracted": False, "is_paratext": False,
            **self._oa_fields(w, location, host),
            "referenced_works_count": len(w.references),
            "referenced_works": [f"https://openalex.org/{self.world.works[r].openalex}" for r in w.references],
            "related_works": [f"https://openalex.org/{self.world.works[r].openalex}" for r in self.world.related_works(w.key)],
            "abstract_inverted_index": _inverted(w.abstract) if w.openalex_abstract and w.abstract else None,
            "cited_by_api_url": f"https://api.openalex.org/works?filter=cites:{w.openalex}",
            "counts_by_year": [], "updated_date": "2026-06-01T00:00:00.000000", "created_date": "2020-01-01",
        }

    def _oa_fields(self, w: Work, location: dict[str, Any], host: str) -> dict[str, Any]:
        """`locations` (the publisher's record page, then the open copies) and
        `best_oa_location` (the first open one, or null)."""
        open_ = self.fulltext.openalex_locations(w, host)
        return {"locations_count": 1 + len(open_), "locations": [location, *open_],
                "best_oa_location": open_[0] if open_ else None}

    def openalex_author(self, a: WorldAuthor) -> dict[str, Any]:
        return {
            "id": f"https://openalex.org/{a.openalex}",
            "orcid": f"https://orcid.org/{a.orcid}" if a.orcid else None,
            "display_name": f"{a.given} {a.family}",
            "display_name_alternatives": [f"{a.family} {a.given}", f"{a.given} {a.family}"],
            "works_count": len(self.world.works_of(a.key)), "cited_by_count": 0,
            "ids": {"openalex": f"https://openalex.org/{a.openalex}"},
            "affiliations": [{"institution": {"display_name": a.affiliation}, "years": []}],
            "works_api_url": f"https://api.openalex.org/works?filter=author.id:{a.openalex}",
        }

    # -- OpenCitations index v2
    def _opencitations(self, req: Request) -> Response:
        rest = _tail(req.path, "/opencitations/")
        rest = re.sub(r"^(?:index/v2/)", "", rest)
        kind, _, ident = rest.partition("/")
        ident = unquote(ident)
        if kind not in ("citations", "references", "citation-count", "reference-count"):
            return Response(404, b"<html><body>Not found</body></html>", content_type="text/html")
        if self._is_broken("opencitations", [ident.lower(), bare_doi(ident)]):
            return _server_error()
        low = ident.lower()
        w = (self.world.by_doi.get(bare_doi(ident)) if low.startswith("doi:")
             else self.world.by_pmid.get(low[5:]) if low.startswith("pmid:") else None)
        rows: list[dict[str, str]] = []
        if w is not None and w.doi:
            if kind.startswith("citation"):
                pairs = [(self.world.works[c], w) for c in self.world.cited_by(w.key)]
            else:
                pairs = [(w, self.world.works[r]) for r in w.references]
            pairs = [(a, b) for a, b in pairs if a.doi and b.doi and a.oc_covered]
            for citing, cited in pairs:
                rows.append({
                    "oci": f"06{citing.key + 100000:09d}-06{cited.key + 100000:09d}",
                    "citing": self._oc_pids(citing), "cited": self._oc_pids(cited),
                    "creation": f"{citing.year}-03-01",
                    "timespan": f"P{max(0, citing.year - cited.year)}Y0M0D",
                    "journal_sc": "no", "author_sc": "yes" if set(citing.author_keys) & set(cited.author_keys) else "no",
                })
        if kind.endswith("-count"):
            return _json([{"count": str(len(rows))}])
        return _json(rows)

    @staticmethod
    def _oc_pids(w: Work) -> str:
        pids = [f"omid:br/06{w.key + 100000:09d}", f"doi:{w.doi}"]
        if w.pmid:
            pids.append(f"pmid:{w.pmid}")
        return " ".join(pids)


# --- serving ----------------------------------------------------------------


class WorldServer(LoopbackServer):
    """A loopback server answering for one world; `base_urls` feeds Settings.base_urls."""

    def __init__(self, world: World, **kwargs: Any):
        super().__init__(**kwargs)
        self.world = world
        self.prefixes = WorldServices(world).register(self)

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: self.url + prefix for name, prefix in self.prefixes.items()}


def serve_world(world: World, fault_rate: float = 0.0, seed: int = 0, *,
                fault_kinds: tuple[str, ...] = ("429", "500", "slow", "truncate")) -> WorldServer:
    """Start a loopback server for `world`, injecting faults at `fault_rate` (0 = none)."""
    return WorldServer(world, fault_rate=fault_rate, seed=seed, fault_kinds=fault_kinds).start()


def _abbrev(journal: str) -> str:
    return " ".join(w[:4] for w in journal.split() if w[0].isupper())


def _crossref_type(w: Work) -> str:
    return {"proceedings-article": "proceedings-article", "other": "other"}.get(w.kind, "journal-article")


def _openalex_type(w: Work) -> str | None:
    return {"editorial": "editorial", "review": "review", "other": None}.get(w.kind, "article")


def _inverted(text: str) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for pos, word in enumerate(text.split()):
        index.setdefault(word, []).append(pos)
    return index


def normalize_w(value: str) -> str:
    m = re.search(r"W\d+", value, flags=re.I)
    return m.group(0).upper() if m else value


def _tail(path: str, prefix: str) -> str:
    rest = path[len(prefix):] if path.startswith(prefix) else path
    return re.sub(r"/{2,}", "/", rest).lstrip("/")


def _split_ids(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def _parse_filters(text: str, *, sep: str, multi: bool) -> dict[str, list[str]]:
    """Crossref repeats a filter name to OR values; OpenAlex joins values with |."""
    out: dict[str, list[str]] = {}
    for part in re.split(r",(?=[a-z_.\-]+:)", text):
        if not part:
            continue
        name, _, value = part.partition(":")
        values = [value] if multi else value.split("|")
        out.setdefault(name.strip(), []).extend(v.strip() for v in values)
    return out


def _host(req: Request) -> str:
    return "http://" + str(req.headers.get("Host") or "127.0.0.1")


def _xml(body: bytes) -> Response:
    return Response(200, body, content_type="text/xml; charset=UTF-8")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                    content_type="application/json")


def _server_error() -> Response:
    return Response(500, b"<html><body><h1>Internal Server Error</h1></body></html>",
                    content_type="text/html")


def _openalex_404() -> Response:
    return Response(404, b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
                    content_type="text/html")

