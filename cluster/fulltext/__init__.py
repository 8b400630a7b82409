"""Full texts: find the open copies of the records at the full-text stage, fetch them
into a folder beside the store, and attach the copies a team obtained by hand.

One module per step, each taking the store and plain arguments:

- `find`: candidate locations from Unpaywall, PubMed Central, OpenAlex and
  Crossref, logged as provenance (`locations` events);
- `fetch`: the best candidate per record downloaded, checked and kept, the
  record marked retrieved (or not retrieved, with why);
- `attach`: a file, or a folder of files matched to records, by hand;
- `check`: whether a file really is a PDF or PMC XML full text.

The files live in `db.files.fulltext_dir(store)` (`review.db.fulltext/`),
named by record id and SHA-256; the meaning of the events is `db.state.retrievals`.
"""

from cluster.fulltext.attach import AttachError, attach_file, attach_folder
from cluster.fulltext.fetch import fetch
from cluster.fulltext.find import find

__all__ = ["AttachError", "attach_file", "attach_folder", "fetch", "find"]
