"""Run directories: the SQLite run store, saved models, resume."""
