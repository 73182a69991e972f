"""Lazy TensorFlow import with bounded threads.

TensorFlow is the training extra (``pip install 'docsort[train]'``): reading mail never needs
it, and it takes seconds to import, so only the commands that train a network import it. Each
worker process limits TensorFlow's thread pools so workers x threads stays within the cores.
"""

from __future__ import annotations

import functools
import importlib.util
import os

from docsort.errors import MissingDependencyError

TRAINING_EXTRA = "pip install 'docsort[train]'"
# What training imports from the extra: the networks, and the export to ONNX that ends every run.
TRAINING_PACKAGES = ("tensorflow", "keras", "tf2onnx", "onnx")


def installed() -> bool:
    """Whether the training extra can be imported, found without importing it (TensorFlow takes
    seconds, and must wait until training has made its data with worker processes)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in TRAINING_PACKAGES)
    except (ImportError, ValueError):
        return False


@functools.lru_cache(maxsize=1)
def tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from docsort import settings
    from docsort.log import native_stderr_silenced

    # TensorFlow's C++ start-up chatter ignores TF_CPP_MIN_LOG_LEVEL and would reach the user's
    # stderr (and cron mail) on every run; DOCSORT_TF_LOG=1 shows it when debugging.
    try:
        with native_stderr_silenced(not settings.show_tensorflow_log()):
            import tensorflow as tf
            import keras  # noqa: F401  (keras initialises the same native runtime)
    except ImportError as exc:
        raise MissingDependencyError(f"TensorFlow is not installed ({exc}); training needs the training extra: "
                                     f"{TRAINING_EXTRA}") from None

    threads = settings.model_threads()
    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:
            pass  # already initialised in this process
    tf.get_logger().setLevel("ERROR")
    return tf


def keras():
    tensorflow()
    import keras

    return keras
