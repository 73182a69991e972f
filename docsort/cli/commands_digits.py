"""``docsort train digits`` and ``docsort evaluate digits``."""
