"""Asking before a VST3 plugin from someone else's project or preset runs, and the VST3
folders the user trusts (Effects panel > Add > VST3 Folders…).

A VST3 plugin is code. One in a trusted folder (:func:`scalgui.audio.vst3.trusted_vst3_folders`)
loads without a question; one that a project or preset names anywhere else is loaded only
after the user answers "Load Plugin" to a question naming the file and what asks for it,
and is otherwise kept in the chain bypassed (nothing is lost; it can be switched on later,
which asks again).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scalgui.audio.effects import EffectChain
from scalgui.audio.vst3 import ENV_VAR, allow_vst3, untrusted_vst3, vst3_folders

__all__ = ["Vst3FoldersDialog", "ask_trust_vst3", "confirm_untrusted"]

#: ``ask(path, where) -> bool``: whether to load the plugin at ``path`` that ``where`` asks for.
AskTrust = Callable[[Path, str], bool]


def ask_trust_vst3(parent: QWidget | None, path: Path, where: str) -> bool:
    """Ask whether to load the VST3 plugin at ``path`` that ``where`` (e.g. "the project
    'mix.scalproj'") names; the safe answer, Keep Bypassed, is the default."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Load VST3 Plugin?",
                      f"{where[:1].upper()}{where[1:]} uses a VST3 plugin that is not in your VST3 folders:",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText(
        f"{path}\n\nA VST3 plugin runs its own code on your computer, with your permissions. "
        "Load it only if you trust where it came from. Kept bypassed, it stays in the chain and nothing runs.")
    load = box.addButton("Load Plugin", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep Bypassed", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.exec()
    return box.clickedButton() is load


def confirm_untrusted(chains, where: str, ask: AskTrust) -> tuple[tuple[EffectChain, ...], list[Path]]:
    """Ask about every untrusted VST3 plugin ``chains`` would load.

    Parameters
    ----------
    chains : iterable of EffectChain
    where : str
        What names the plugins, for the question ("the project 'mix.scalproj'").
    ask : callable
        ``ask(path, where) -> bool`` (:func:`ask_trust_vst3`, or a test's answer).

    Returns
    -------
    (tuple of EffectChain, list of Path)
        The chains with the refused plugins bypassed, and the refused files. An accepted
        file is trusted for the rest of the session (:func:`scalgui.audio.vst3.allow_vst3`).
    """
    chains = tuple(chains)
    refused = []
    for path in untrusted_vst3(chains):
        if ask(path, where):
            allow_vst3(path)
        else:
            refused.append(path)
    if refused:
        chains = tuple(chain.with_bypassed(refused) for chain in chains)
    return chains, refused


class Vst3FoldersDialog(QDialog):
    """The folders VST3 plugins load from without asking: the standard ones (shown, fixed)
    and the user's own (Add…, Remove), kept in :mod:`scalgui.user_settings`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        from scalgui.user_settings import user_vst3_folders

        super().__init__(parent)
        self.setWindowTitle("VST3 Folders")
        self.folder_list = QListWidget()
        for folder in vst3_folders():
            item = QListWidgetItem(f"{folder}  (standard)")
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            self.folder_list.addItem(item)
        for folder in user_vst3_folders():
            self._add_item(folder)
        self.add_button = QPushButton("Add…")
        self.add_button.clicked.connect(self._add_dialog)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        note = QLabel("VST3 plugins in these folders load without asking (a plugin runs its own code: add only "
                      f"folders whose plugins you installed). ${ENV_VAR} adds more.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.folder_list)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(560, 320)

    def _add_item(self, folder) -> None:
        item = QListWidgetItem(str(folder))
        item.setData(Qt.ItemDataRole.UserRole, str(folder))
        self.folder_list.addItem(item)

    def ask_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Add a VST3 Folder")

    def _add_dialog(self) -> None:
        folder = self.ask_folder()
        if folder and folder not in self.user_folders():
            self._add_item(folder)

    def remove_selected(self) -> None:
        for item in self.folder_list.selectedItems():
            if item.data(Qt.ItemDataRole.UserRole) is not None:
                self.folder_list.takeItem(self.folder_list.row(item))

    def user_folders(self) -> list[str]:
        """The user's folders as the dialog shows them now."""
        items = (self.folder_list.item(i) for i in range(self.folder_list.count()))
        return [f for f in (item.data(Qt.ItemDataRole.UserRole) for item in items) if f is not None]

    def accept(self) -> None:
        from scalgui.user_settings import read_settings, write_settings

        try:
            write_settings({**read_settings(), "vst3_folders": self.user_folders()})
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "VST3 Folders", f"Cannot save the settings: {exc}")
            return
        super().accept()
