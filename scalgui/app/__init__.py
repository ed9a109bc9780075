"""The document layer: audio, analysis, edit list, effect chains and undo, as plain Python objects (no Qt)."""
