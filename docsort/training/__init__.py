"""Training the shipped models from data (kept apart from inference)."""
