"""searchsvc: full-text search over public statements, on an embedded Whoosh index."""

import os

# numpy (the postings arrays) needs no BLAS, but OpenBLAS starts a thread per core on import,
# each reserving buffers: under a 1 GB address-space limit the import itself failed.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
