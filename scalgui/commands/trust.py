"""``--allow-plugin PATH``: the command line's way to trust a VST3 plugin outside the
trusted folders (see :mod:`scalgui.audio.vst3`), shared by the commands that read
projects and presets (``fx``, ``render``).

A preset's or project's effect chain may name any file; loading a VST3 runs its code. So
the commands check every plugin a chain would load before any work, and refuse the ones
neither in a trusted folder nor named by ``--allow-plugin``, naming the file and the flag.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from scalgui.cli import CommandError

__all__ = ["add_allow_plugin_argument", "allow_plugins", "refuse_untrusted"]


def add_allow_plugin_argument(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--allow-plugin PATH`` option."""
    parser.add_argument("--allow-plugin", action="append", default=[], metavar="PATH",
                        help="trust this VST3 plugin file although it is outside your VST3 folders (a plugin runs "
                             "its own code: only for plugins you trust); may be given more than once")


def allow_plugins(args: argparse.Namespace) -> None:
    """Trust each ``--allow-plugin`` file for this process; a name that is not a VST3 plugin
    file or bundle on disk is refused (a typo would otherwise leave the plugin refused)."""
    from scalgui.audio.vst3 import allow_vst3

    for text in getattr(args, "allow_plugin", None) or ():
        path = Path(text)
        if not os.path.lexists(path):
            raise CommandError(f"--allow-plugin '{path}': no such file or folder")
        if path.suffix.lower() != ".vst3":
            raise CommandError(f"--allow-plugin '{path}': not a VST3 plugin (expected a .vst3 bundle or file)")
        allow_vst3(path)


def refuse_untrusted(chains, where: str) -> None:
    """Raise :class:`CommandError` when ``chains`` would load a VST3 plugin that is not
    trusted; ``where`` names the preset or project that asks for it."""
    from scalgui.audio.errors import UntrustedPluginError
    from scalgui.audio.vst3 import untrusted_vst3

    untrusted = untrusted_vst3(chains)
    if untrusted:
        more = f" (and {len(untrusted) - 1} more)" if len(untrusted) > 1 else ""
        error = UntrustedPluginError(untrusted[0])
        raise CommandError(f"{where}: {error}{more}; to trust it, pass --allow-plugin '{untrusted[0]}' or add its "
                           "folder to scalgui's VST3 folders")
