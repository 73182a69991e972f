"""docsort: read destination postal codes from scanned mail.

The pipeline, one module a stage:
ingest -> preprocess -> segment (Tesseract) -> writing_type (printed/handwritten)
-> digit_reader (MNIST-trained CNN) -> postal_code (destination picking) -> cost -> report.
"""

__version__ = "0.1.0"
