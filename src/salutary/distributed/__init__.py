"""Salutary labeling of pools that live on a Dask cluster: the Dask engine.

The pool can be a :class:`dask.array.Array`, a :class:`dask.dataframe.DataFrame`, a
path or glob of Parquet files, or an in-memory array (:func:`scatter_pool` puts it on the
workers). :class:`DaskPool` is the pool interface of the one labeling loop
(:func:`salutary.loop.label_pool`): every oracle-free strategy runs on it. The model and
the influence factors (a few ``K x D`` matrices) stay on the client and are sent once per
scoring pass; every partition is scored where it lives; the top rows are found by a tree
reduction over per-partition candidates, so only ``O(budget)`` rows per partition ever
leave a worker, never the pool.

Results equal the in-memory engine's exactly (rows, labels and the bits of the scores):

* Scores. BLAS gives results that depend on the shape of the matrix product, so every
  per-row score is computed in chunks of 4096 rows counted from the first remaining row
  (:mod:`salutary._chunks`), on both engines. Each task scores exactly those chunks: it
  takes the chunks that start in its partition and borrows the rows it needs from the
  next partition(s). Rows already labeled are removed before chunking, as the in-memory
  pool removes them.
* Ties. :func:`salutary.pool.top_k` ranks ties by ``rng.permutation(n)`` over the whole
  pool. The client draws that same permutation and sends each task its slice. This needs
  ``8 n`` bytes on the client, so it is limited to :data:`MAX_TIEBREAK_ROWS` rows.

Dask is imported only when it is used (``pip install 'salutary[dask]'``); workers of a
remote cluster need ``salutary`` installed too (they unpickle the scorers).
"""

from salutary.distributed._arrays import as_dask_array, scatter_pool
from salutary.distributed._client import CONNECT_TIMEOUT, get_client
from salutary.distributed._pool import DaskPool, label_rounds, select_salutary
from salutary.distributed._scoring import MAX_TIEBREAK_ROWS, distributed_top_k, score_pool
from salutary.loop import LabelRound

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_TIEBREAK_ROWS",
    "DaskPool",
    "LabelRound",
    "as_dask_array",
    "distributed_top_k",
    "get_client",
    "label_rounds",
    "scatter_pool",
    "score_pool",
    "select_salutary",
]
