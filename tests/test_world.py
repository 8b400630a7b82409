"""The generated review world answers in the services' real formats, deterministically."""

from __future__ import annotations

import io

import pytest
import requests
from Bio import Entrez

from cluster.demo.services import serve_world
from cluster.demo.world import World


@pytest.fixture(scope="module")
def world():
    return World.generate(seed=3, n_works=60, n_index=4)


@pytest.fixture(scope="module")
def server(world):
    s = serve_world(world)
    yield s
    s.stop()


def test_generation_is_deterministic_and_has_the_promised_noise(world):
    again = World.generate(seed=3, n_works=60, n_index=4)
    assert again.works == world.works and again.authors == world.authors
    assert World.generate(seed=4, n_works=60, n_index=4).works != world.works
    assert len(world.index_articles) == 4
    relevant = {w.key for w in world.works if w.relevant}
    assert set(world.index_keys) <= relevant
    assert len(world.relevant) == len(relevant) >= 7
    kinds = {w.kind for w in world.works}
    assert {"journal-article", "editorial", "proceedings-article"} <= kinds
    assert any(w.language is None for w in world.works)
    assert any(w.language not in ("en", None) for w in world.works)
    assert any(w.doi_upper for w in world.works) and any(w.ahead_of_print for w in world.works)
    assert any(w.pubmed_no_doi for w in world.works) and any(w.openalex_no_pmid for w in world.works)
    # relevant studies speak their own vocabulary
    w = world.works[world.index_keys[0]]
    assert "compassion" in (w.title + w.abstract).lower() or "kindness" in (w.title + w.abstract).lower() \
        or any(t in w.words for t in ("empathy", "burnout", "mindfulness", "meditation", "nurses",
                                       "caregivers", "resilience", "wellbeing", "distress", "empathic",
                                       "contemplative", "self-compassion", "self-kindness",
                                       "loving-kindness"))


def test_pubmed_efetch_esearch_elink_parse_with_biopython(world, server):
    base = server.base_urls["pubmed"]
    seeds = world.index_articles
    r = requests.get(base + "/efetch.fcgi", params={"db": "pubmed", "id": ",".join(s.pmid for s in seeds),
                                                    "retmode": "xml"})
    assert b"pubmed_250101.dtd" in r.content
    data = Entrez.read(io.BytesIO(r.content))
    assert [str(a["MedlineCitation"]["PMID"]) for a in data["PubmedArticle"]] == [s.pmid for s in seeds]
    # repeated id= gives one linkset per seed, with scores for pubmed_pubmed
    r = requests.get(base + "/elink.fcgi", params=[("dbfrom", "pubmed"), ("db", "pubmed"),
                                                   ("cmd", "neighbor_score"), ("linkname", "pubmed_pubmed"),
                                                   *[("id", s.pmid) for s in seeds]])
    sets = Entrez.read(io.BytesIO(r.content))
    assert [ls["IdList"][0] for ls in sets] == [s.pmid for s in seeds]
    first = sets[0]["LinkSetDb"][0]["Link"]
    assert first[0]["Id"] == seeds[0].pmid and first[0]["Score"] == "2147483647"
    scores = [int(link["Score"]) for link in first[1:]]
    assert scores == sorted(scores, reverse=True)
    assert [link["Id"] for link in first[1:]] == [world.works[k].pmid for k, _ in
                                                  world.neighbours(world.index_keys[0])]
    # comma-joined ids merge into one linkset, as the real service does
    r = requests.get(base + "/elink.fcgi", params={"dbfrom": "pubmed", "id": ",".join(s.pmid for s in seeds),
                                                   "linkname": "pubmed_pubmed_citedin"})
    assert len(Entrez.read(io.BytesIO(r.content))) == 1
    lead = world.authors[world.works[world.index_keys[0]].author_keys[0]]
    r = requests.get(base + "/esearch.fcgi", params={"db": "pubmed", "term": f"{lead.family} {lead.initials}[au]"})
    found = Entrez.read(io.BytesIO(r.content))
    expected = {w.pmid for w in world.works if w.pmid and any(
        world.authors[k].family == lead.family and world.authors[k].initials.startswith(lead.initials)
        for k in w.author_keys)}
    assert set(found["IdList"]) == expected and int(found["Count"]) == len(expected)
    assert seeds[0].pmid in expected


def test_crossref_openalex_opencitations_shapes(world, server):
    seed = world.works[world.index_keys[1]]
    r = requests.get(server.base_urls["crossref"] + "/works/" + seed.doi.upper())
    msg = r.json()["message"]
    assert r.json()["message-type"] == "work" and msg["DOI"].lower() == seed.doi
    assert len(msg["reference"]) == len(seed.references)
    assert any("DOI" not in ref for ref in msg["reference"]) or not seed.unstructured_refs
    r = requests.get(server.base_urls["crossref"] + "/works", params={
        "filter": ",".join(f"doi:{world.works[k].doi}" for k in world.index_keys), "rows": 10})
    assert r.json()["message"]["total-results"] == 4
    assert requests.get(server.base_urls["crossref"] + "/works/10.9999/none").status_code == 404
    r = requests.get(server.base_urls["openalex"] + "/works", params={"filter": f"cites:{seed.openalex}"})
    got = r.json()
    assert got["meta"]["count"] == len(world.cited_by(seed.key))
    assert {x["id"].rsplit("/", 1)[1] for x in got["results"]} == {world.works[k].openalex for k in world.cited_by(seed.key)}
    work = requests.get(server.base_urls["openalex"] + f"/works/doi:{seed.doi}").json()
    assert work["id"].endswith(seed.openalex) and len(work["referenced_works"]) == len(seed.references)
    lead = world.authors[seed.author_keys[0]]
    author = requests.get(server.base_urls["openalex"] + f"/authors/{lead.openalex}").json()
    assert author["display_name"] == f"{lead.given} {lead.family}"
    assert author["works_count"] == len(world.works_of(lead.key))
    listed = requests.get(server.base_urls["openalex"] + "/works", params={
        "filter": f"authorships.author.id:{lead.openalex}", "per_page": 100}).json()
    assert {x["id"].rsplit("/", 1)[1] for x in listed["results"]} == \
        {world.works[k].openalex for k in world.works_of(lead.key)}
    r = requests.get(server.base_urls["openalex"] + "/works/W1")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    rows = requests.get(server.base_urls["opencitations"] + f"/citations/doi:{seed.doi}").json()
    citing = {world.works[k] for k in world.cited_by(seed.key)}
    assert {row["citing"].split()[1] for row in rows} == {f"doi:{w.doi}" for w in citing if w.doi and w.oc_covered}
    assert all(row["cited"].split()[1] == f"doi:{seed.doi}" for row in rows)


def test_broken_ids_answer_500_until_healed(world, server):
    doi = world.works[world.index_keys[0]].doi
    world.broken.add(("opencitations", doi))
    try:
        assert requests.get(server.base_urls["opencitations"] + f"/citations/doi:{doi}").status_code == 500
    finally:
        world.broken.clear()
    assert requests.get(server.base_urls["opencitations"] + f"/citations/doi:{doi}").status_code == 200
