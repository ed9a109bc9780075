"""Running plugins, and replaying edit lists that mix plugin edits with the others.

An edit list is processed in runs: consecutive dsp edits (:class:`scalgui.dsp.edits.Edit`)
go through :func:`~scalgui.dsp.edits.apply_edits` in one call, onto the magnitudes so far;
each :class:`~scalgui.plugins.edit.PluginEdit` runs its plugin on them. Plugins see the
whole sound, so a re-render of a few time spans (which analyses only windows around
them) takes its targets from the whole sound's edited magnitudes through
:func:`edit_list_targets`.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..dsp.edits import apply_edits, edit_weights
from ..dsp.frame import Coefficients, WaveletFrame
from ..dsp.phase import delta_target
from .api import Plugin, PluginCancelled, PluginContext, PluginError, PluginWarning
from .edit import PluginEdit

__all__ = ["apply_edit_list", "edit_list_targets", "has_plugin_edits", "run_plugin", "selection_weights"]


def has_plugin_edits(edits: Sequence[Any]) -> bool:
    """Whether any edit of ``edits`` is a :class:`PluginEdit`."""
    return any(isinstance(e, PluginEdit) for e in edits)


def selection_weights(original: Coefficients, selection: Any) -> list[torch.Tensor] | None:
    """A selection's feathered weight on the frame's grid, one ``[bands, frames]`` tensor
    per hop group (0 on the lowpass and highpass atoms); ``None`` for no selection."""
    if selection is None:
        return None
    dtype, device = original.frame.dtype, original.groups[0].device
    weights = [torch.zeros(g.shape[-2:], dtype=dtype, device=device) for g in original.groups]
    for g, r, index, w in edit_weights(original, PluginEdit("selection", (), selection)):
        weights[g][r, index] = torch.as_tensor(w, dtype=dtype, device=device)
    return weights


def _with_source_phase(original: Coefficients, magnitudes: Sequence[torch.Tensor]) -> Coefficients:
    # The source's phase on the current magnitudes: the editor's warm-start estimate of the
    # edited sound (DESIGN.md: within a few dB of the best attainable).
    return original.with_groups([torch.polar(m.to(o.real.dtype), o.angle()) for m, o in zip(magnitudes, original.groups)])


def _checked(plugin: Plugin, result: Any, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The plugin's magnitudes as valid tensors in the layout of ``like``."""
    if torch.is_tensor(result) or not isinstance(result, (list, tuple)):
        raise PluginError(
            f"{plugin.name}: process must return a list of tensors (one per hop group), got {type(result).__name__}",
            plugin.name,
        )
    if len(result) != len(like):
        raise PluginError(f"{plugin.name}: returned {len(result)} tensors, expected {len(like)} (one per hop group)",
                          plugin.name)
    out = []
    for i, (r, m) in enumerate(zip(result, like)):
        r = torch.as_tensor(r)
        if r.is_complex():
            raise PluginError(f"{plugin.name}: returned complex values in group {i}; magnitudes are real", plugin.name)
        if r.shape != m.shape:
            raise PluginError(
                f"{plugin.name}: group {i} has shape {tuple(r.shape)}, expected {tuple(m.shape)}", plugin.name
            )
        r = r.to(device=m.device, dtype=m.dtype)
        if not bool(torch.isfinite(r).all()):
            raise PluginError(f"{plugin.name}: returned NaN or infinite magnitudes in group {i}", plugin.name)
        out.append(r.clamp_min(0))
    return out


def run_plugin(
    plugin: Plugin,
    original: Coefficients,
    current: Sequence[torch.Tensor] | None = None,
    params: Mapping[str, Any] | None = None,
    selection: Any = None,
) -> list[torch.Tensor]:
    """Run one plugin on magnitudes and blend its result in.

    Parameters
    ----------
    plugin : Plugin
    original : Coefficients
        The source's complex coefficients (any batch shape, e.g. channels).
    current : sequence of torch.Tensor, optional
        Magnitudes the earlier edits produced, per hop group; default ``|original|``.
        Not modified.
    params : mapping, optional
        Parameter values (validated and completed with :meth:`Plugin.resolve`).
    selection : Shape or None
        Where it acts (feathered); ``None``: everywhere.

    Returns
    -------
    list of torch.Tensor
        New magnitudes: ``current + weight * (result - current)`` for a blending plugin
        with a selection, the plugin's result otherwise.

    Raises
    ------
    PluginError
        Invalid parameters, an exception inside the plugin (the message names the plugin,
        its file and the exception), or a result in the wrong layout or not finite.
    PluginCancelled
        Inside :func:`~scalgui.plugins.api.plugin_run`, when the host cancelled the run
        (checked before, between and after the plugin's steps, and wherever the plugin
        calls ``ctx.check()`` or ``ctx.progress()``).
    """
    values = plugin.resolve(params)
    current = [m for m in (current if current is not None else original.magnitudes())]
    weight = selection_weights(original, selection)
    ctx = PluginContext([m.clone() for m in current], original, values, weight, selection, plugin=plugin.name)
    where = f" ({plugin.source})" if plugin.source else ""
    ctx.check()  # inside plugin_run(cancel=...): the host stops between steps, whatever the plugin does
    try:
        if plugin.audio is not None:
            signal = original.frame.synthesize(_with_source_phase(original, current))
            samples = signal.detach().to("cpu", torch.float32).numpy()
            result = plugin.audio(ctx, samples.copy())
            result = np.asarray(result.detach().cpu() if torch.is_tensor(result) else result, dtype=np.float32)
            if result.shape != samples.shape:
                raise PluginError(
                    f"{plugin.name}{where}: the audio step returned shape {result.shape}, expected {samples.shape}",
                    plugin.name,
                )
            if not np.all(np.isfinite(result)):
                raise PluginError(f"{plugin.name}{where}: the audio step returned NaN or infinite samples",
                                  plugin.name)
            ctx.magnitudes = ctx.analyze(result)
            ctx.check()
        out = plugin.process(ctx) if plugin.process is not None else ctx.magnitudes
        out = _checked(plugin, out, current)
    except PluginError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside plugin code is the plugin's
        message = " ".join(str(exc).split()) or "(no message)"
        raise PluginError(f"{plugin.name}{where} failed: {type(exc).__name__}: {message}", plugin.name) from exc
    if plugin.blend and weight is not None:
        out = [c + w * (o - c) for c, w, o in zip(current, weight, out)]
    ctx.check()  # a cancel that came while the plugin ignored it still drops the result
    return out


def _resolve(edit: PluginEdit, registry) -> Plugin:
    if registry is None:
        from .discovery import default_registry

        registry = default_registry()
    return registry.get(edit.plugin)


def apply_edit_list(
    original: Coefficients,
    edits: Sequence[Any],
    *,
    onto: Coefficients | None = None,
    registry=None,
    errors: str = "raise",
) -> Coefficients:
    """Target magnitudes: dsp edits and plugin edits applied in order to ``|original|``.

    Parameters
    ----------
    original : Coefficients
        Complex coefficients of the source.
    edits : sequence of Edit or PluginEdit
    onto : Coefficients, optional
        Magnitudes earlier edits produced, to apply ``edits`` on top of.
    registry : Registry, optional
        Where plugin ids are looked up; default :func:`~scalgui.plugins.discovery.default_registry`.
    errors : {"raise", "warn"}
        What a plugin edit that cannot run does: raise :class:`PluginError`, or issue a
        :class:`PluginWarning` and leave the magnitudes as they were (replaying a list
        must not fail because a plugin went missing).

    Returns
    -------
    Coefficients
        Real, non-negative magnitudes in ``original``'s layout.
    """
    if errors not in ("raise", "warn"):
        raise ValueError(f"errors must be 'raise' or 'warn', got {errors!r}")
    current = onto
    run: list = []
    for edit in edits:
        if not isinstance(edit, PluginEdit):
            run.append(edit)
            continue
        if run or current is None:
            current = apply_edits(original, run, onto=current)
            run = []
        try:
            plugin = _resolve(edit, registry)
            groups = run_plugin(plugin, original, current.groups, edit.values, edit.selection)
        except PluginCancelled:
            raise  # a cancelled run is never half-applied, not even when replaying
        except PluginError as exc:
            if errors == "raise":
                raise
            warnings.warn(f"skipped a plugin edit: {exc}", PluginWarning, stacklevel=2)
            continue
        current = original.with_groups(groups)
    if run or current is None:
        current = apply_edits(original, run, onto=current)
    return current


def edit_list_targets(
    frame: WaveletFrame,
    samples: np.ndarray,
    edits: Sequence[Any],
    *,
    registry=None,
    errors: str = "warn",
) -> Callable[[Coefficients], Coefficients]:
    """Target magnitudes of windows of a sound, for :func:`~scalgui.dsp.phase.rerender_spans`.

    Parameters
    ----------
    frame : WaveletFrame
        The frame the windows are analysed with (the render frame).
    samples : np.ndarray [shape=(channels, frames)]
        The whole source.
    edits : sequence of Edit or PluginEdit

    Returns
    -------
    callable
        ``targets(window)``: given a window's analysis of the *source* (its ``offset``
        placing it in the sound), its target magnitudes. Without plugin edits the edits
        are rasterised on the window alone (cheap). With plugin edits the whole sound is
        analysed and edited once, on first use, because plugins need the whole sound
        (a noise profile, a frozen moment, a reference region elsewhere); each window then
        gets its own magnitudes plus what the edits changed there
        (:func:`~scalgui.dsp.phase.delta_target`).
    """
    edits = list(edits)
    if not has_plugin_edits(edits):
        return lambda window: apply_edits(window, edits)
    whole: dict[str, Callable[[Coefficients], Coefficients]] = {}

    def targets(window: Coefficients) -> Coefficients:
        if "delta" not in whole:
            source = frame.analyze(torch.from_numpy(np.ascontiguousarray(samples)))
            target = apply_edit_list(source, edits, registry=registry, errors=errors)
            whole["delta"] = delta_target(source, target)
        return whole["delta"](window)

    return targets
