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
        super().__init__(text or describe_edit(edit))
        self.doc = doc
        self.edit = edit
        self._pushed = False

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
