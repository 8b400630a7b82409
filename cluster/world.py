"""A generated review world: a corpus of works served like PubMed, Crossref,
OpenAlex and OpenCitations, on the project's own loopback server.

The demo, the tests and the benchmarks need outside services that answer in
their real formats but never touch the network, with data large enough to be
realistic (a citation graph, authors with publication lists, related-article
scores, non-English and non-journal items) and a hidden set of relevant
studies with a distinct vocabulary, so that a whole review can be run and its
recall measured. Everything is generated from a seed by this module; nothing
is copied from elsewhere.

The same work looks slightly different from one service to the next, as it
does in life: a DOI in upper case, a title in another case or without its
final full stop, no abstract, the year of the online-first version. Coverage
differs too: PubMed's citation links cover only works deposited in PMC,
OpenCitations only works with DOIs on both ends, and some works have no PMID
or no DOI at all.

Use::

    world = World.generate(seed=1, n_works=3000, n_index=40)
    server = serve_world(world, fault_rate=0.05)   # 127.0.0.1, one route per service
    settings = Settings(base_urls=server.base_urls, rate_limits={...})
    ... world.index_articles (their PMIDs/DOIs), world.relevant (the hidden answer key)
    server.stop()
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import unquote
from xml.sax.saxutils import escape

from connectors.loopback import LoopbackServer, Request, Response

# --- vocabulary (written for this generator) ----------------------------------

_TOPICS: dict[str, tuple[str, ...]] = {
    "cardiology": ("hypertension", "statin", "atrial", "fibrillation", "anticoagulation", "stroke",
                   "cholesterol", "arrhythmia", "ventricular", "coronary", "infarction", "angina",
                   "thrombosis", "aspirin", "echocardiography", "valve"),
    "oncology": ("tumour", "chemotherapy", "metastasis", "carcinoma", "radiotherapy", "biopsy",
                 "lymphoma", "immunotherapy", "remission", "oncogene", "screening", "mammography",
                 "melanoma", "survival", "neoplasm", "staging"),
    "education": ("curriculum", "classroom", "teacher", "literacy", "pupils", "assessment",
                  "tutoring", "attainment", "school", "pedagogy", "homework", "reading",
                  "numeracy", "exam", "student", "lecture"),
    "ecology": ("wetland", "pollinator", "biodiversity", "habitat", "species", "grassland",
                "invasive", "forest", "predator", "rainfall", "soil", "nitrogen", "drought",
                "migration", "coral", "fisheries"),
    "infection": ("vaccine", "antibiotic", "resistance", "sepsis", "influenza", "pathogen",
                  "malaria", "tuberculosis", "viral", "hygiene", "transmission", "outbreak",
                  "antimicrobial", "bacteraemia", "immunisation", "pneumonia"),
    "orthopaedics": ("fracture", "arthroplasty", "knee", "hip", "tendon", "ligament", "osteoporosis",
                     "spinal", "cartilage", "rehabilitation", "physiotherapy", "sprain", "bone",
                     "shoulder", "implant", "gait"),
}

#: the hidden relevant studies share this vocabulary and little else does
_RELEVANT: tuple[str, ...] = (
    "compassion", "self-kindness", "loving-kindness", "empathic", "meditation", "caregivers",
    "burnout", "mindfulness", "wellbeing", "nurses", "kindness", "resilience", "empathy",
    "contemplative", "self-compassion", "distress",
)

_GENERIC = ("effect", "outcomes", "patients", "cohort", "randomised", "trial", "analysis",
            "association", "risk", "intervention", "evaluation", "quality", "population",
            "study", "factors", "adults", "participants", "follow-up", "evidence", "model")

_TITLE_TEMPLATES = (
    "Effect of {a} on {b} in {c}: a randomised trial",
    "{A} and {b} among {c}: a cohort study",
    "The role of {a} in {b}",
    "{A} as a predictor of {b} in {c}",
    "Evaluating {a} for {b}: results from a multicentre study",
    "Associations between {a}, {b} and {c}",
    "A {a} intervention to improve {b}",
    "{A} versus usual care for {b}: a pragmatic trial",
)

_SENTENCES = (
    "We examined whether {a} was associated with {b} in {c}.",
    "Background: {a} is common and its relation to {b} remains uncertain.",
    "Methods: {n} participants were followed for {m} months and {a} was recorded.",
    "Results: {a} was associated with lower {b} (hazard ratio 0.{r}).",
    "The {a} group reported better {b} than controls.",
    "Conclusions: {a} may reduce {b} among {c}.",
    "These findings support further research on {a} and {b}.",
    "Secondary outcomes included {a}, {b} and {c}.",
)

_FAMILIES = ("Smith", "Garcia", "Nguyen", "Okafor", "Larsen", "Kowalski", "Tanaka", "Rossi",
             "Muller", "Haddad", "Ivanova", "Brown", "Silva", "Chen", "Patel", "Dubois",
             "Andersson", "Moreau", "Kim", "Novak", "Fischer", "Costa", "Walsh", "Ahmed",
             "Lindqvist", "Kaur", "Bianchi", "Jensen", "O'Neill", "Sato", "Murphy", "Hughes",
             "Schmidt", "Khan", "Berg", "Reyes", "Santos", "Wright", "Clarke", "Yamamoto")
_GIVEN = ("Anna", "James", "Maria", "David", "Sofia", "Peter", "Laura", "Ahmed", "Elena", "John",
          "Grace", "Tomas", "Hannah", "Ravi", "Ingrid", "Paul", "Mei", "Lucas", "Nora", "Samuel",
          "Clara", "Olu", "Karin", "Marco", "Aisha", "Leo", "Freya", "Hugo", "Zara", "Felix")
_PLACES = ("University of Northbridge", "Eastfield Medical School", "Lakeside Institute of Health",
           "Southport University Hospital", "Institute of Applied Research, Westmere",
           "Riverside College", "Centre for Care Research, Highmoor", "Department of Public "
           "Health, University of Greyhaven", "Faculty of Medicine, Coastal University",
           "School of Nursing, Marlow University")
_JOURNALS = ("Journal of Clinical Studies", "Review of Applied Health", "Annals of Care Research",
             "International Journal of Evidence", "Frontiers in Practice",
             "Bulletin of Field Research", "Open Journal of Outcomes", "Acta Scientifica Nova")
_CONFERENCES = ("Proceedings of the Annual Meeting on Health Data",
                "Proceedings of the International Conference on Care Informatics")
_LANG_PUBMED = {"en": "eng", "de": "ger", "fr": "fre", "es": "spa"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

PUBMED_DOCTYPE = ('<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January '
                  '2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')
ESEARCH_DOCTYPE = ('<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
                   '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">')
ELINK_DOCTYPE = ('<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
                 '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">')
SEED_SCORE = 2147483647  # PubMed lists the seed first with the int32 maximum


# --- the corpus ---------------------------------------------------------------


@dataclass(frozen=True)
class WorldAuthor:
    key: int
    family: str
    given: str
    orcid: str | None
    affiliation: str
    email: str | None

    @property
    def initials(self) -> str:
        return "".join(p[0] for p in re.split(r"[\s-]+", self.given) if p).upper()

    @property
    def openalex(self) -> str:
        return f"A{5000000000 + self.key}"


@dataclass(frozen=True)
class WorkIds:
    """How the outside world names a work (any of these may be missing but openalex)."""

    pmid: str | None
    doi: str | None
    openalex: str


@dataclass(frozen=True)
class Work:
    key: int
    pmid: str | None
    doi: str | None
    openalex: str
    title: str
    abstract: str
    author_keys: tuple[int, ...]
    year: int
    journal: str
    volume: str
    issue: str
    pages: str
    language: str | None           # None: no service knows it
    kind: str                      # journal-article, review, editorial, proceedings-article, other
    topic: str
    relevant: bool
    references: tuple[int, ...]
    in_pmc: bool                   # PubMed citedin/refs know this work's reference list
    oc_covered: bool               # OpenCitations holds this work's citations
    ahead_of_print: bool           # online a year before the issue: services disagree on year
    doi_upper: bool                # Crossref and PubMed spell the DOI in upper case
    openalex_title_case: bool      # OpenAlex gives the title in Title Case
    crossref_abstract: bool
    openalex_abstract: bool
    unstructured_refs: frozenset[int] = frozenset()  # references Crossref has without a DOI
    pubmed_no_doi: bool = False    # PubMed does not know the DOI (older records)
    openalex_no_pmid: bool = False  # OpenAlex has not linked the PMID

    @property
    def ids(self) -> WorkIds:
        return WorkIds(self.pmid, self.doi, self.openalex)

    @property
    def words(self) -> frozenset[str]:
        return frozenset(w for w in re.findall(r"[a-z][a-z'-]+", (self.title + " " + self.abstract).lower())
                         if len(w) > 3)


@dataclass
class World:
    """The corpus, its graph, and handlers answering like the four services.

    `broken` holds (service, id) pairs whose requests answer 500 for as long as
    they stay in the set, to drill per-seed failures (a service that fails for
    one index article only).
    """

    seed: int
    works: tuple[Work, ...]
    authors: tuple[WorldAuthor, ...]
    index_keys: tuple[int, ...]
    broken: set[tuple[str, str]] = field(default_factory=set)
    _by_pmid: dict[str, Work] = field(default_factory=dict, repr=False)
    _by_doi: dict[str, Work] = field(default_factory=dict, repr=False)
    _by_openalex: dict[str, Work] = field(default_factory=dict, repr=False)
    _cited_by: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _by_author: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _neighbours: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict, repr=False)
    _related: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _words: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)
    _by_topic: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        cited_by: dict[int, list[int]] = defaultdict(list)
        by_author: dict[int, list[int]] = defaultdict(list)
        for w in self.works:
            if w.pmid:
                self._by_pmid[w.pmid] = w
            if w.doi:
                self._by_doi[w.doi.lower()] = w
            self._by_openalex[w.openalex] = w
            for r in w.references:
                cited_by[r].append(w.key)
            for a in w.author_keys:
                by_author[a].append(w.key)
        self._words = {w.key: w.words for w in self.works}
        topics: dict[str, list[int]] = defaultdict(list)
        for w in self.works:
            topics[w.topic].append(w.key)
        self._by_topic = {k: tuple(v) for k, v in topics.items()}
        self._cited_by = {k: tuple(v) for k, v in cited_by.items()}
        self._by_author = {k: tuple(v) for k, v in by_author.items()}

    # -- generation
    @classmethod
    def generate(cls, seed: int = 1, n_works: int = 60, n_index: int = 4, *,
                 relevant_share: float = 0.06, refs_per_work: tuple[int, int] = (4, 14),
                 first_year: int = 2000, last_year: int = 2024) -> "World":
        """A world of `n_works` works of which `n_index` are index articles.

        Deterministic: the same arguments give the same world, byte for byte.
        """
        if n_index < 1 or n_works < max(12, 4 * n_index):
            raise ValueError("a world needs at least 12 works and four per index article")
        rng = random.Random(seed)
        topics = list(_TOPICS)
        n_relevant = max(n_index + 3, int(round(n_works * relevant_share)))

        # authors: one pool per topic plus the relevant field; a few homonyms
        authors: list[WorldAuthor] = []
        pools: dict[str, list[int]] = {}
        n_per_pool = max(6, n_works // 12)
        for pool in ["relevant", *topics]:
            pools[pool] = []
            for _ in range(n_per_pool):
                key = len(authors)
                family, given = rng.choice(_FAMILIES), rng.choice(_GIVEN)
                if rng.random() < 0.3:
                    given += " " + rng.choice(_GIVEN)
                orcid = _orcid(rng) if rng.random() < 0.45 else None
                email = (f"{given.split()[0].lower()}.{re.sub(r'[^a-z]', '', family.lower())}"
                         f"@{pool[:4]}{key}.example.org") if rng.random() < 0.5 else None
                authors.append(WorldAuthor(key, family, given, orcid, rng.choice(_PLACES), email))
                pools[pool].append(key)

        # works: years ascending so references point backwards
        years = sorted(rng.randint(first_year, last_year) for _ in range(n_works))
        relevant_keys = set(rng.sample(range(n_works // 4, n_works), n_relevant))
        plans = []
        for key, year in enumerate(years):
            relevant = key in relevant_keys
            topic = "relevant" if relevant else rng.choice(topics)
            plans.append((key, year, relevant, topic))

        # index articles: relevant English journal articles with a past and a future
        candidates = [k for k, _, rel, _ in plans if rel and n_works // 4 <= k <= n_works * 0.85]
        if len(candidates) < n_index:
            candidates = sorted(relevant_keys)
        index_keys = tuple(sorted(rng.sample(candidates, n_index)))

        # each index article's lead author gets a publication list, with a
        # homonym (same surname and initials, elsewhere, in another field)
        lead_of_index: dict[int, int] = {}
        homonyms: dict[int, int] = {}
        for k in index_keys:
            lead = rng.choice(pools["relevant"])
            lead_of_index[k] = lead
            a = authors[lead]
            twin_key = len(authors)
            other_place = next(p for p in _PLACES[::-1] if p != a.affiliation)
            authors.append(WorldAuthor(twin_key, a.family, a.given.split()[0] + " " + rng.choice(_GIVEN),
                                       _orcid(rng) if a.orcid else None, other_place, None))
            homonyms[lead] = twin_key
            pools[rng.choice(topics)].append(twin_key)

        works: list[Work] = []
        by_topic: dict[str, list[int]] = defaultdict(list)
        for key, year, relevant, topic in plans:
            vocab = _RELEVANT if relevant else _TOPICS[topic]
            if key in index_keys:
                lead = lead_of_index[key]
            else:
                lead = rng.choice(pools[topic])
            co = rng.sample(pools[topic], k=min(len(pools[topic]), rng.randint(0, 4)))
            author_keys = tuple(dict.fromkeys([lead, *co]))
            kind = "journal-article"
            r = rng.random()
            if key not in index_keys:
                if r < 0.06:
                    kind = "editorial"
                elif r < 0.12:
                    kind = "proceedings-article"
                elif r < 0.18:
                    kind = "review"
                elif r < 0.20:
                    kind = "other"
            language: str | None = "en"
            r = rng.random()
            if key not in index_keys:
                if r < 0.07:
                    language = rng.choice(("de", "fr", "es"))
                elif r < 0.11:
                    language = None
            if key not in index_keys:
                # every world, however small, holds each kind of noise at least once
                kind = {7: "editorial", 11: "proceedings-article", 13: "other"}.get(key % 19, kind)
                language = {5: None, 9: "de"}.get(key % 17, language)
            has_pmid = kind not in ("proceedings-article", "other") and language is not None \
                and rng.random() < 0.92
            if key in index_keys:
                has_pmid = True
            has_doi = key in index_keys or rng.random() < 0.93
            title = _title(rng, vocab)
            if language not in ("en", None):
                title = f"[{title}]"
            n_refs = rng.randint(*refs_per_work) if kind in ("journal-article", "review") else rng.randint(0, 3)
            # works of the same year cite each other only a little, never forwards
            earlier = list(range(max(0, key - 3))) if key > 3 else []
            refs: list[int] = []
            if earlier:
                same = [w for w in by_topic[topic] if w < key - 3]
                for _ in range(n_refs):
                    pool = same if same and rng.random() < (0.8 if relevant else 0.7) else earlier
                    refs.append(rng.choice(pool))
            refs = sorted(set(refs))
            unstructured = frozenset(r for r in refs if rng.random() < 0.25)
            works.append(Work(
                key=key,
                pmid=str(31000000 + key * 17 + seed % 7) if has_pmid else None,
                doi=f"10.{5100 + topics.index(topic) if topic in topics else 5199}/w{seed}.{key:05d}" if has_doi else None,
                openalex=f"W{4100000000 + seed * 100000 + key}",
                title=title, abstract=_abstract(rng, vocab), author_keys=author_keys, year=year,
                journal=rng.choice(_CONFERENCES) if kind == "proceedings-article" else rng.choice(_JOURNALS),
                volume=str(year - 1980), issue=str(rng.randint(1, 12)),
                pages=f"{(p := rng.randint(1, 900))}-{p + rng.randint(3, 15)}",
                language=language, kind=kind, topic=topic, relevant=relevant,
                references=tuple(refs), in_pmc=rng.random() < 0.55 or key in index_keys,
                oc_covered=rng.random() < 0.85, ahead_of_print=rng.random() < 0.1,
                doi_upper=rng.random() < 0.15, openalex_title_case=rng.random() < 0.2,
                crossref_abstract=rng.random() < 0.4, openalex_abstract=rng.random() < 0.8,
                unstructured_refs=unstructured,
                # with no identifier in common, these are the duplicates deduplication must find
                pubmed_no_doi=key not in index_keys and rng.random() < 0.3,
                openalex_no_pmid=key not in index_keys and rng.random() < 0.3,
            ))
            by_topic[topic].append(key)

        # publication lists for the index articles' lead authors: a few of
        # their field's works, and the homonym's own works elsewhere
        rebuilt = list(works)
        for k, lead in lead_of_index.items():
            own = [w.key for w in rebuilt if w.topic == "relevant" and w.key != k
                   and lead not in w.author_keys]
            for wk in rng.sample(own, k=min(len(own), rng.randint(3, 6))):
                w = rebuilt[wk]
                pos = 0 if rng.random() < 0.5 else len(w.author_keys)
                keys = list(w.author_keys)
                keys.insert(pos, lead)
                rebuilt[wk] = _replace(w, author_keys=tuple(dict.fromkeys(keys)))
            twin = homonyms[lead]
            elsewhere = [w.key for w in rebuilt if w.topic != "relevant"]
            for wk in rng.sample(elsewhere, k=min(len(elsewhere), rng.randint(2, 4))):
                w = rebuilt[wk]
                rebuilt[wk] = _replace(w, author_keys=tuple(dict.fromkeys([twin, *w.author_keys])))
        return cls(seed=seed, works=tuple(rebuilt), authors=tuple(authors), index_keys=index_keys)

    # -- what tests and the demo see
    @property
    def index_articles(self) -> tuple[WorkIds, ...]:
        return tuple(self.works[k].ids for k in self.index_keys)

    @property
    def relevant(self) -> tuple[WorkIds, ...]:
        return tuple(w.ids for w in self.works if w.relevant)

    def work(self, ident: str) -> Work | None:
        """The work a PMID, DOI (any case) or OpenAlex id names."""
        ident = ident.strip()
        if re.fullmatch(r"W\d+", ident, flags=re.I):
            return self._by_openalex.get(ident.upper())
        if ident.isdigit():
            return self._by_pmid.get(ident)
        return self._by_doi.get(_bare_doi(ident))

    def cited_by(self, key: int) -> tuple[int, ...]:
        return self._cited_by.get(key, ())

    def works_of(self, author_key: int) -> tuple[int, ...]:
        return self._by_author.get(author_key, ())

    def neighbours(self, key: int) -> tuple[tuple[int, int], ...]:
        """PubMed-like similar articles of a work with a PMID: (key, score), best first."""
        if key not in self._neighbours:
            mine = self._words[key]
            scored = []
            for o in self.works:
                if o.key == key or not o.pmid:
                    continue
                theirs = self._words[o.key]
                shared = len(mine & theirs)
                if shared < 2:
                    continue
                score = int(1e8 * shared / math.sqrt(len(mine) * len(theirs)))
                scored.append((score, -o.key, o.key))
            scored.sort(reverse=True)
            self._neighbours[key] = tuple((k, s) for s, _, k in scored[:100])
        return self._neighbours[key]

    def related_works(self, key: int) -> tuple[int, ...]:
        """OpenAlex-like related works: recent works of the same field (about ten)."""
        if key not in self._related:
            w = self.works[key]
            mine = self._words[key]
            same = [(len(mine & self._words[k]), self.works[k].year, k)
                    for k in self._by_topic[w.topic] if k != key]
            same.sort(key=lambda t: (-t[0], -t[1], t[2]))
            self._related[key] = tuple(k for _, _, k in same[:10])
        return self._related[key]

    # -- serving
    def register(self, server: LoopbackServer) -> dict[str, str]:
        """Add this world's routes to `server`; returns the path prefix per service."""
        prefixes = {"pubmed": "/pubmed", "crossref": "/crossref", "openalex": "/openalex",
                    "opencitations": "/opencitations"}
        server.route("/pubmed/", self._pubmed)
        server.route("/crossref/", self._crossref)
        server.route("/openalex/", self._openalex)
        server.route("/opencitations/", self._opencitations)
        return prefixes

    def _is_broken(self, service: str, idents: Iterable[str]) -> bool:
        if not self.broken:
            return False
        return any((service, str(i).lower()) in self.broken for i in idents)

    # -- PubMed E-utilities
    def _pubmed(self, req: Request) -> Response:
        endpoint = _tail(req.path, "/pubmed/")
        if endpoint.startswith("esearch"):
            return self._esearch(req)
        if endpoint.startswith("efetch"):
            ids = _split_ids(req.get_all("id"))
            if self._is_broken("pubmed", ids):
                return _server_error()
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
            w = self._by_pmid.get(pmid.strip())
            if w is not None:
                parts.append(self._pubmed_article(w))
        parts.append("</PubmedArticleSet>")
        return "\n".join(parts).encode("utf-8")

    def _pubmed_article(self, w: Work) -> str:
        e = escape
        authors = []
        for ak in w.author_keys:
            a = self.authors[ak]
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
        month = _MONTHS[w.key % 12]
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
            ids.append(f'<ArticleId IdType="pmc">PMC{9000000 + w.key}</ArticleId>')
        start, _, end = w.pages.partition("-")
        lang = _LANG_PUBMED.get(w.language or "", "und")
        return (
            f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{w.pmid}</PMID>'
            f'<Article PubModel="{"Print-Electronic" if w.ahead_of_print else "Print"}"><Journal>'
            f'<ISSN IssnType="Electronic">{1000 + _JOURNALS.index(w.journal) if w.journal in _JOURNALS else 1999}-{w.key % 9000 + 1000:04d}</ISSN>'
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
        hits = [w for w in self.works if w.pmid and self._matches_term(w, term)]
        if mindate:
            hits = [w for w in hits if w.year >= int(mindate[:4])]
        if maxdate:
            hits = [w for w in hits if w.year <= int(maxdate[:4])]
        # "relevance" here: newest first, then PMID, a stable stand-in for Best Match
        hits.sort(key=lambda w: (-w.year, w.pmid))
        ids = [w.pmid for w in hits[retstart:retstart + retmax]]
        body = [f'<?xml version="1.0" encoding="UTF-8" ?>', ESEARCH_DOCTYPE,
                f"<eSearchResult><Count>{len(hits)}</Count><RetMax>{len(ids)}</RetMax>"
                f"<RetStart>{retstart}</RetStart><IdList>"]
        body += [f"<Id>{i}</Id>" for i in ids]
        body.append(f"</IdList><TranslationSet/><QueryTranslation>{escape(term)}</QueryTranslation>"
                    "</eSearchResult>")
        return _xml("\n".join(body).encode("utf-8"))

    def _matches_term(self, w: Work, term: str) -> bool:
        return self._matches_clause(w, term)

    def _matches_clause(self, w: Work, clause: str) -> bool:
        """Boolean PubMed syntax: parentheses, then OR, then AND, then `value[tag]`."""
        parsed = _parse_clause(clause)
        if parsed[0] in ("OR", "AND"):
            test = any if parsed[0] == "OR" else all
            return test(self._matches_clause(w, p) for p in parsed[1])
        if parsed[0] == "text":
            return any(parsed[1] in t for t in (w.title.lower(), w.abstract.lower()))
        value, tag = parsed[1], parsed[2]
        if tag in ("au", "author", "1au", "lastau"):
            keys = w.author_keys
            if tag == "1au":
                keys = keys[:1]
            elif tag == "lastau":
                keys = keys[-1:]
            return any(_author_matches(self.authors[k], value) for k in keys)
        if tag == "auid":
            return any(self.authors[k].orcid == value.upper() or self.authors[k].orcid == value
                       for k in w.author_keys)
        if tag in ("doi", "aid", "lid"):
            return bool(w.doi) and not w.pubmed_no_doi and w.doi.lower() == _bare_doi(value)
        if tag == "pt":
            return {"journal article": w.kind in ("journal-article", "review"),
                    "editorial": w.kind == "editorial", "review": w.kind == "review"}.get(value, False)
        if tag == "la":
            return _LANG_PUBMED.get(w.language or "", "und") == value[:3] or (w.language or "") == value
        if tag in ("dp", "pdat"):
            return str(w.year) == value[:4]
        if tag in ("tiab", "tw", "all"):
            return value in (w.title + " " + w.abstract).lower()
        return False

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
            w = self._by_pmid.get(pmid)
            if w is None:
                continue
            if name == "pubmed_pubmed":
                pairs = [(w.pmid, SEED_SCORE)] + [(self.works[k].pmid, s) for k, s in self.neighbours(w.key)]
            elif name == "pubmed_pubmed_citedin":
                pairs = [(self.works[k].pmid, 0) for k in sorted(self.cited_by(w.key), reverse=True)
                         if self.works[k].pmid and self.works[k].in_pmc]
            elif name == "pubmed_pubmed_refs":
                pairs = [(self.works[k].pmid, 0) for k in w.references
                         if self.works[k].pmid] if w.in_pmc else []
            else:
                pairs = []
            for p, s in pairs:
                merged.setdefault(p, s)
        return list(merged.items())

    # -- Crossref
    def _crossref(self, req: Request) -> Response:
        rest = _tail(req.path, "/crossref/")
        if rest.startswith("works/"):
            doi = _bare_doi(unquote(rest[len("works/"):]))
            w = self._by_doi.get(doi)
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
            works = [w for w in self.works if w.doi]
            if "doi" in filters:
                wanted = [_bare_doi(d) for d in filters["doi"]]
                if self._is_broken("crossref", wanted):
                    return _server_error()
                works = [self._by_doi[d] for d in dict.fromkeys(wanted) if d in self._by_doi]
            if "orcid" in filters:
                orcids = {o.rsplit("/", 1)[-1].upper() for o in filters["orcid"]}
                works = [w for w in works if any((self.authors[k].orcid or "") in orcids
                                                 for k in w.author_keys)]
            if "type" in filters:
                works = [w for w in works if _crossref_type(w) in filters["type"]]
            author_q = (req.get("query.author") or "").lower().split()
            if author_q:
                works = [w for w in works if any(all(t in f"{self.authors[k].given} {self.authors[k].family}".lower()
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
            a = self.authors[ak]
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
            "page": w.pages, "source": "Crossref", "is-referenced-by-count": len(self.cited_by(w.key)),
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
            msg["reference"] = [self._crossref_ref(w, i, self.works[r]) for i, r in enumerate(w.references)]
        return msg

    def _crossref_ref(self, citing: Work, i: int, cited: Work) -> dict[str, Any]:
        ref: dict[str, Any] = {"key": f"{citing.doi}_ref{i + 1}"}
        lead = self.authors[cited.author_keys[0]]
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
            return _json(self.openalex_work(w))
        if rest.rstrip("/") == "works":
            filters = _parse_filters(req.get("filter") or "", sep=",", multi=False)
            per_page = min(200, int(req.get("per-page") or req.get("per_page") or 25))
            page = int(req.get("page") or 1)
            works = list(self.works)
            for name, values in filters.items():
                values = [v for v in values if v]
                probe = [v.lower() for v in values]
                if self._is_broken("openalex", probe):
                    return _server_error()
                if name in ("openalex", "ids.openalex", "openalex_id"):
                    keys = {normalize_w(v) for v in values}
                    works = [w for w in works if w.openalex in keys]
                elif name in ("doi", "ids.doi"):
                    dois = {_bare_doi(v) for v in values}
                    works = [w for w in works if w.doi and w.doi.lower() in dois]
                elif name in ("pmid", "ids.pmid"):
                    pm = {v.rsplit("/", 1)[-1] for v in values}
                    works = [w for w in works if w.pmid in pm and not w.openalex_no_pmid]
                elif name in ("cites", "referenced_works"):
                    targets = {self._by_openalex[k].key for k in map(normalize_w, values) if k in self._by_openalex}
                    works = [w for w in works if targets & set(w.references)]
                elif name == "cited_by":
                    src = [self._by_openalex[k] for k in map(normalize_w, values) if k in self._by_openalex]
                    refs = {r for s in src for r in s.references}
                    works = [w for w in works if w.key in refs]
                elif name in ("authorships.author.id", "author.id"):
                    keys = {int(re.sub(r"\D", "", v.rsplit("/", 1)[-1])) - 5000000000 for v in values}
                    works = [w for w in works if keys & set(w.author_keys)]
                elif name in ("authorships.author.orcid", "author.orcid"):
                    orcids = {v.rsplit("/", 1)[-1].upper() for v in values}
                    works = [w for w in works if any((self.authors[k].orcid or "") in orcids for k in w.author_keys)]
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
                          "results": [self.openalex_work(w) for w in chunk], "group_by": []})
        if rest.startswith("authors/"):
            ident = rest[len("authors/"):]
            key = int(re.sub(r"\D", "", ident) or 0) - 5000000000
            if not 0 <= key < len(self.authors):
                return _openalex_404()
            return _json(self.openalex_author(self.authors[key]))
        if rest.rstrip("/") == "authors":
            filters = _parse_filters(req.get("filter") or "", sep=",", multi=False)
            found = list(self.authors)
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
            w = self._by_pmid.get(low[5:].rsplit("/", 1)[-1])
            return None if w is None or w.openalex_no_pmid else w
        if low.startswith("doi:") or "doi.org/" in low or low.startswith("10."):
            return self._by_doi.get(_bare_doi(ident))
        return self._by_openalex.get(normalize_w(ident))

    def openalex_work(self, w: Work) -> dict[str, Any]:
        title = w.title.title() if w.openalex_title_case else w.title
        year = w.year - 1 if w.ahead_of_print else w.year
        authorships = []
        for i, ak in enumerate(w.author_keys):
            a = self.authors[ak]
            authorships.append({
                "author_position": "first" if i == 0 else ("last" if i == len(w.author_keys) - 1 else "middle"),
                "author": {"id": f"https://openalex.org/{a.openalex}", "display_name": f"{a.given} {a.family}",
                           "orcid": f"https://orcid.org/{a.orcid}" if a.orcid else None},
                "institutions": [{"id": f"https://openalex.org/I{4200000000 + _PLACES.index(a.affiliation)}",
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
            "corresponding_author_ids": [f"https://openalex.org/{self.authors[w.author_keys[-1]].openalex}"],
            "cited_by_count": len(self.cited_by(w.key)),
            "biblio": {"volume": w.volume, "issue": w.issue, "first_page": w.pages.split("-")[0],
                       "last_page": w.pages.split("-")[-1]},
            "is_retracted": False, "is_paratext": False, "locations_count": 1, "locations": [location],
            "referenced_works_count": len(w.references),
            "referenced_works": [f"https://openalex.org/{self.works[r].openalex}" for r in w.references],
            "related_works": [f"https://openalex.org/{self.works[r].openalex}" for r in self.related_works(w.key)],
            "abstract_inverted_index": _inverted(w.abstract) if w.openalex_abstract and w.abstract else None,
            "cited_by_api_url": f"https://api.openalex.org/works?filter=cites:{w.openalex}",
            "counts_by_year": [], "updated_date": "2026-06-01T00:00:00.000000", "created_date": "2020-01-01",
        }

    def openalex_author(self, a: WorldAuthor) -> dict[str, Any]:
        return {
            "id": f"https://openalex.org/{a.openalex}",
            "orcid": f"https://orcid.org/{a.orcid}" if a.orcid else None,
            "display_name": f"{a.given} {a.family}",
            "display_name_alternatives": [f"{a.family} {a.given}", f"{a.given} {a.family}"],
            "works_count": len(self.works_of(a.key)), "cited_by_count": 0,
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
        if self._is_broken("opencitations", [ident.lower(), _bare_doi(ident)]):
            return _server_error()
        low = ident.lower()
        w = (self._by_doi.get(_bare_doi(ident)) if low.startswith("doi:")
             else self._by_pmid.get(low[5:]) if low.startswith("pmid:") else None)
        rows: list[dict[str, str]] = []
        if w is not None and w.doi:
            if kind.startswith("citation"):
                pairs = [(self.works[c], w) for c in self.cited_by(w.key)]
            else:
                pairs = [(w, self.works[r]) for r in w.references]
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
        self.prefixes = world.register(self)

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: self.url + prefix for name, prefix in self.prefixes.items()}


def serve_world(world: World, fault_rate: float = 0.0, seed: int = 0, *,
                fault_kinds: tuple[str, ...] = ("429", "500", "slow", "truncate")) -> WorldServer:
    """Start a loopback server for `world`, injecting faults at `fault_rate` (0 = none)."""
    return WorldServer(world, fault_rate=fault_rate, seed=seed, fault_kinds=fault_kinds).start()


# --- utilities ---------------------------------------------------------------


def _replace(w: Work, **changes: Any) -> Work:
    import dataclasses

    return dataclasses.replace(w, **changes)


def _orcid(rng: random.Random) -> str:
    digits = [rng.randint(0, 9) for _ in range(15)]
    total = 0
    for d in digits:
        total = (total + d) * 2
    check = (12 - total % 11) % 11
    s = "".join(map(str, digits)) + ("X" if check == 10 else str(check))
    return f"{s[0:4]}-{s[4:8]}-{s[8:12]}-{s[12:16]}"


def _title(rng: random.Random, vocab: tuple[str, ...]) -> str:
    a, b, c = rng.sample(vocab, 3)
    return rng.choice(_TITLE_TEMPLATES).format(a=a, A=a.capitalize(), b=b, c=c + " " + rng.choice(_GENERIC))


def _abstract(rng: random.Random, vocab: tuple[str, ...]) -> str:
    out = []
    for template in rng.sample(_SENTENCES, rng.randint(3, 5)):
        a, b, c = rng.sample(vocab, 2) + [rng.choice(_GENERIC)]
        out.append(template.format(a=a, b=b, c=c, n=rng.randint(20, 900), m=rng.randint(3, 36),
                                   r=rng.randint(50, 95)))
    return " ".join(out)


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


def _bare_doi(value: str) -> str:
    v = value.strip()
    v = re.sub(r"^(?:doi:|https?:/+(?:dx\.)?doi\.org/)", "", unquote(v), flags=re.I)
    return v.lower()


def normalize_w(value: str) -> str:
    m = re.search(r"W\d+", value, flags=re.I)
    return m.group(0).upper() if m else value


def _author_matches(a: WorldAuthor, query: str) -> bool:
    """PubMed's author matching: surname, then initials that may be truncated."""
    parts = query.replace(",", " ").split()
    if not parts:
        return False
    if len(parts) == 1:
        return _fold(a.family) == _fold(parts[0])
    surname, initials = " ".join(parts[:-1]), parts[-1]
    return _fold(a.family) == _fold(surname) and a.initials.lower().startswith(initials.lower())


@functools.lru_cache(maxsize=4096)
def _parse_clause(clause: str) -> tuple:
    clause = clause.strip()
    while clause.startswith("(") and _closing(clause, 0) == len(clause) - 1:
        clause = clause[1:-1].strip()
    for op in ("OR", "AND"):
        parts = _split_top(clause, op)
        if len(parts) > 1:
            return (op, tuple(parts))
    m = re.fullmatch(r'"?(.+?)"?\s*\[(\w+)\]', clause)
    if not m:
        return ("text", clause.lower())
    return ("field", m.group(1).strip().lower(), m.group(2).lower())


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _split_top(text: str, op: str) -> list[str]:
    """Split on ` OP ` outside parentheses and quotes."""
    parts, depth, quoted, last = [], 0, False, 0
    token = f" {op} "
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        elif not quoted and depth == 0 and text[i:i + len(token)].upper() == token:
            parts.append(text[last:i])
            i += len(token)
            last = i
            continue
        i += 1
    parts.append(text[last:])
    return [p for p in parts if p.strip()]


def _fold(s: str) -> str:
    return re.sub(r"[^a-z]", "", s.lower())


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
