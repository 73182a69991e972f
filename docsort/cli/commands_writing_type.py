"""Commands of the writing_type area."""
