"""Commands of the process area."""
