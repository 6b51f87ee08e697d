"""searchsvc: full-text search over public statements, on an embedded Whoosh index."""
