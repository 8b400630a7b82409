"""A generated review world: a corpus of works with authors, a citation graph,
related-article scores and a hidden set of relevant studies.

The demo, the tests and the benchmarks need outside services that answer in
their real formats but never touch the network, with data large enough to be
realistic (a citation graph, authors with publication lists, related-article
scores, non-English and non-journal items) and a hidden set of relevant
studies with a distinct vocabulary, so that a whole review can be run and its
recall measured. Everything is generated from a seed by this module; nothing
is copied from elsewhere. `cluster.demo.services` serves a world like PubMed,
Crossref, OpenAlex and OpenCitations.

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

import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

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
PLACES = ("University of Northbridge", "Eastfield Medical School", "Lakeside Institute of Health",
           "Southport University Hospital", "Institute of Applied Research, Westmere",
           "Riverside College", "Centre for Care Research, Highmoor", "Department of Public "
           "Health, University of Greyhaven", "Faculty of Medicine, Coastal University",
           "School of Nursing, Marlow University")
JOURNALS = ("Journal of Clinical Studies", "Review of Applied Health", "Annals of Care Research",
             "International Journal of Evidence", "Frontiers in Practice",
             "Bulletin of Field Research", "Open Journal of Outcomes", "Acta Scientifica Nova")
_CONFERENCES = ("Proceedings of the Annual Meeting on Health Data",
                "Proceedings of the International Conference on Care Informatics")



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
    """The corpus and its graph (`cluster.demo.services` answers for it).

    `broken` holds (service, id) pairs whose requests answer 500 for as long as
    they stay in the set, to drill per-seed failures (a service that fails for
    one index article only).
    """

    seed: int
    works: tuple[Work, ...]
    authors: tuple[WorldAuthor, ...]
    index_keys: tuple[int, ...]
    broken: set[tuple[str, str]] = field(default_factory=set)
    by_pmid: dict[str, Work] = field(default_factory=dict, repr=False)
    by_doi: dict[str, Work] = field(default_factory=dict, repr=False)
    by_openalex: dict[str, Work] = field(default_factory=dict, repr=False)
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
                self.by_pmid[w.pmid] = w
            if w.doi:
                self.by_doi[w.doi.lower()] = w
            self.by_openalex[w.openalex] = w
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
                authors.append(WorldAuthor(key, family, given, orcid, rng.choice(PLACES), email))
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
            other_place = next(p for p in PLACES[::-1] if p != a.affiliation)
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
                    cited = same if same and rng.random() < (0.8 if relevant else 0.7) else earlier
                    refs.append(rng.choice(cited))
            refs = sorted(set(refs))
            unstructured = frozenset(r for r in refs if rng.random() < 0.25)
            works.append(Work(
                key=key,
                pmid=str(31000000 + key * 17 + seed % 7) if has_pmid else None,
                doi=f"10.{5100 + topics.index(topic) if topic in topics else 5199}/w{seed}.{key:05d}" if has_doi else None,
                openalex=f"W{4100000000 + seed * 100000 + key}",
                title=title, abstract=_abstract(rng, vocab), author_keys=author_keys, year=year,
                journal=rng.choice(_CONFERENCES) if kind == "proceedings-article" else rng.choice(JOURNALS),
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
            return self.by_openalex.get(ident.upper())
        if ident.isdigit():
            return self.by_pmid.get(ident)
        return self.by_doi.get(bare_doi(ident))

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


def bare_doi(value: str) -> str:
    v = value.strip()
    v = re.sub(r"^(?:doi:|https?:/+(?:dx\.)?doi\.org/)", "", unquote(v), flags=re.I)
    return v.lower()


