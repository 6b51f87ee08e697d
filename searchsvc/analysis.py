"""Text analysis: how titles and bodies become index terms, and queries become the same terms.

Kept apart from the schema so the analysis can change (with a new schema version)
without touching ingestion.
"""

from __future__ import annotations

from whoosh.analysis import Analyzer, CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter
from whoosh.support.charset import accent_map


def text_analyzer() -> Analyzer:
    """Words, lowercased, accents folded ("Ürümqi" is "urumqi"), English Snowball stems."""
    return RegexTokenizer() | LowercaseFilter() | CharsetFilter(accent_map) | StemFilter(lang="en")
