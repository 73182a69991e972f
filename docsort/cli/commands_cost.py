"""Commands of the cost area."""
