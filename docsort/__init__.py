"""docsort: read destination postal codes from scanned mail.

The package is laid out by stage: ``page/`` reads one document (ingest, clean, Tesseract,
regions, destination), ``reading/`` holds the networks and what reads with them (printed or
handwritten, number fields), ``batch/`` runs many documents on local workers or Dask and writes
the results, ``cost/`` prices the decisions, ``cli/`` is the command line and ``training/``
makes and measures the models.
"""

__version__ = "0.1.0"
