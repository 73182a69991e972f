"""The project's own data making: scanner degradations, printed text, composed handwriting, envelopes."""
