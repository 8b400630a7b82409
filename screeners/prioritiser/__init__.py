"""The prioritiser as a model: which records are likeliest relevant.

Read `presets` first: the default model in one screen. Then `components`
(classifiers, class balance, query strategies), `views` (the feature matrices
they exchange, whole or as packed counts), `features` (TF-IDF, counted by
`termcounts`), `fitting` (the classifiers' fits), `simulation` (replaying a
labelled dataset, scored by `metrics`) and `cache` (the one in-memory cache
policy). Ranking a store's records from its
decision log is `screeners.prioritise`; this package knows no store.
"""

from screeners.prioritiser.components import Model, Views, make
from screeners.prioritiser.presets import PRESETS, resolve_model

__all__ = ["Model", "PRESETS", "Views", "make", "resolve_model"]
