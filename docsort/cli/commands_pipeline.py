"""Commands of the pipeline area."""
