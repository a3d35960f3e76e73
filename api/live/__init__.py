"""The supervisor's live view: the snapshot (`snapshot.py`) and its stream."""
