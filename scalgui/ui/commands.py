"""Undo commands: every edit goes through a QUndoStack as one command.

The document keeps its own edit list and undo/redo stacks; a command drives them, so the
QUndoStack (and its history panel) and the document stay in step as long as every edit
is pushed through :func:`push_edit`.
"""
from __future__ import annotations

from PyQt6.QtGui import QUndoCommand, QUndoStack

from .tools import describe_edit

__all__ = ["EditCommand", "push_edit"]


class EditCommand(QUndoCommand):
    """One edit on one document: redo pushes it (then re-applies it), undo removes it."""

    def __init__(self, doc, edit, text: str | None = None) -> None:
        self.description = text or describe_edit(edit)
        super().__init__(self.description)
        self.doc = doc
        self.edit = edit
        self._pushed = False

    def note(self, text: str) -> None:
        """Show ``text`` beside the step in the History (e.g. how the render of it came
        out); a later note replaces it."""
        self.setText(f"{self.description} — {text}")

    def redo(self) -> None:
        if not self._pushed:
            self.doc.push(self.edit)
            self._pushed = True
        else:
            self.doc.redo()

    def undo(self) -> None:
        self.doc.undo()


def push_edit(stack: QUndoStack, doc, edit) -> EditCommand:
    """Apply ``edit`` to ``doc`` as one undoable step on ``stack``."""
    command = EditCommand(doc, edit)
    stack.push(command)
    return command
