"""Measuring models on held-out test sets and drawing the report pictures."""
