"""The index on disk: how text becomes terms (analysis), the fields and documents (schema), writing
segments (writer), the directory, its marker and its lock (store), and reading it back (dump, info)."""
