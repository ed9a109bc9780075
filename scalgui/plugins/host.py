"""Running plugins, and replaying edit lists that mix plugin edits with the others.

An edit list is processed in runs: consecutive dsp edits (:class:`scalgui.dsp.edits.Edit`)
go through :func:`~scalgui.dsp.edits.apply_edits` in one call, onto the magnitudes so far;
each :class:`~scalgui.plugins.edit.PluginEdit` runs its plugin on them. Plugins see the
whole sound, so a re-render of a few time spans (which analyses only windows around
them) takes its targets from the whole sound's edited magnitudes through
:func:`edit_list_targets`, and where a plugin's audio step made sound, starts from that
sound's phase (:class:`AudioSteps`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..dsp.edits import apply_edits, edit_weights
from ..dsp.frame import Coefficients, WaveletFrame
from ..dsp.phase import blended_reference, delta_target
from .api import Plugin, PluginCancelled, PluginContext, PluginError, PluginWarning
from .edit import PluginEdit

__all__ = [
    "AUDIO_STEP_WARM_START",
    "AudioSteps",
    "WindowTargets",
    "apply_edit_list",
    "edit_list_targets",
    "has_plugin_edits",
    "run_plugin",
    "selection_weights",
]


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
    return _run_plugin(plugin, original, current, params, selection).magnitudes


@dataclass
class _PluginOutcome:
    magnitudes: list[torch.Tensor]
    #: The analysis of the sound an audio step made (``None`` without an audio step).
    heard: Coefficients | None
    #: The selection's weight (``None``: everywhere).
    weight: list[torch.Tensor] | None


def _run_plugin(plugin, original, current, params, selection) -> _PluginOutcome:
    values = plugin.resolve(params)
    current = [m for m in (current if current is not None else original.magnitudes())]
    heard = None
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
            heard = ctx.coefficients_of(result)
            ctx.magnitudes = heard.magnitudes()
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
    return _PluginOutcome(out, heard, weight)


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
    audio_steps: "AudioSteps | None" = None,
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
    audio_steps : AudioSteps, optional
        Collects the sounds that plugins' audio steps made, where they acted (a warm
        start for the render).

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
            outcome = _run_plugin(plugin, original, current.groups, edit.values, edit.selection)
        except PluginCancelled:
            raise  # a cancelled run is never half-applied, not even when replaying
        except PluginError as exc:
            if errors == "raise":
                raise
            warnings.warn(f"skipped a plugin edit: {exc}", PluginWarning, stacklevel=2)
            continue
        current = original.with_groups(outcome.magnitudes)
        if audio_steps is not None and outcome.heard is not None:
            audio_steps.add(outcome.heard, outcome.weight)
    if run or current is None:
        current = apply_edits(original, run, onto=current)
    return current


#: Whether a render starts from the phase of the sound that plugins' audio steps made
#: where they acted (:class:`AudioSteps`); off, it starts from the previous render's
#: phase there too (scripts/audio_step_sweep.py measures both).
AUDIO_STEP_WARM_START = True


class AudioSteps:
    """The sounds that plugins' audio steps made, where they acted: a render's warm start.

    A plugin with an audio step (texture, image) makes a real sound, and the magnitudes
    it leaves are that sound's. Its phase is then consistent with them, so a render that
    starts from it there starts (nearly) where it should end, where the previous render's
    phase (the source's, before the plugin) belongs to another sound.

    Per hop group it keeps ``weighted``, the audio steps' coefficients each weighted by
    where it acted (its selection's feathered weight, 1 without a selection) and by what
    later audio steps left of it, and ``weight``, how much of the place they cover
    together: ``1 - prod(1 - w_i)``.
    """

    def __init__(self) -> None:
        self.weighted: Coefficients | None = None
        self.weight: list[torch.Tensor] | None = None

    def add(self, heard: Coefficients, weight: Sequence[torch.Tensor] | None) -> None:
        """Take the analysis ``heard`` of an audio step's sound, acting with ``weight``."""
        if weight is None:
            weight = [torch.ones(g.shape[-2:], dtype=g.real.dtype, device=g.device) for g in heard.groups]
        if self.weighted is None:
            self.weighted = heard.with_groups([h * w for h, w in zip(heard.groups, weight)])
            self.weight = [w.clone() for w in weight]
            return
        self.weighted = heard.with_groups(
            [a * (1 - w) + h * w for a, h, w in zip(self.weighted.groups, heard.groups, weight)])
        self.weight = [c + w - c * w for c, w in zip(self.weight, weight)]

    def reference(self) -> Callable[[Coefficients], Coefficients] | None:
        """A local-reference function for :func:`~scalgui.dsp.phase.rerender_spans`
        (:func:`~scalgui.dsp.phase.blended_reference`), or ``None`` when no audio step ran."""
        return None if self.weighted is None else blended_reference(self.weighted, self.weight)


class WindowTargets:
    """Target magnitudes and warm starts of windows of a sound, for
    :func:`~scalgui.dsp.phase.rerender_spans` (made by :func:`edit_list_targets`).

    Calling it with a window's analysis of the *source* (its ``offset`` placing it in the
    sound) gives the window's target magnitudes. Without plugin edits, or with plugins
    that are all :attr:`~scalgui.plugins.api.Plugin.local`, the edits are applied to the
    window alone (cheap). With other plugin edits the whole sound is analysed
    and edited once, on first use, because plugins need the whole sound (a noise
    profile, a frozen moment, a reference region elsewhere); each window then gets its
    own magnitudes plus what the edits changed there
    (:func:`~scalgui.dsp.phase.delta_target`).

    :meth:`reference` gives the coefficients a window's retrieval starts from: the
    window's analysis of the signal being re-rendered, except where plugins' audio steps
    made sound (:class:`AudioSteps`).
    """

    def __init__(self, frame: WaveletFrame, samples: np.ndarray, edits: Sequence[Any], *, registry=None,
                 errors: str = "warn") -> None:
        self.frame, self.samples, self.edits = frame, samples, list(edits)
        self.registry, self.errors = registry, errors
        self._plugin_edits = has_plugin_edits(self.edits)
        self._delta: Callable[[Coefficients], Coefficients] | None = None
        self._reference: Callable[[Coefficients], Coefficients] | None = None

    def _replay(self) -> Callable[[Coefficients], Coefficients]:
        if self._delta is None:
            source = self.frame.analyze(torch.from_numpy(np.ascontiguousarray(self.samples)))
            steps = AudioSteps()
            target = apply_edit_list(source, self.edits, registry=self.registry, errors=self.errors,
                                     audio_steps=steps)
            self._reference = steps.reference()
            self._delta = delta_target(source, target)
        return self._delta

    def __call__(self, window: Coefficients) -> Coefficients:
        if not self._plugin_edits:
            return apply_edits(window, self.edits)
        if self._all_local():
            return apply_edit_list(window, self.edits, registry=self.registry, errors=self.errors)
        return self._replay()(window)

    def _all_local(self) -> bool:
        """Whether every plugin edit's plugin is local (one that cannot be found is not:
        the whole sound's replay reports it)."""
        try:
            return all(_resolve(e, self.registry).local for e in self.edits if isinstance(e, PluginEdit))
        except PluginError:  # an unknown plugin: the replay warns or raises as asked
            return False

    def reference(self, local: Coefficients) -> Coefficients:
        """The coefficients to warm-start a window from, given its analysis ``local`` of
        the signal being re-rendered."""
        if not (AUDIO_STEP_WARM_START and self._plugin_edits) or self._all_local():
            return local  # no audio step made sound (local plugins have none)
        self._replay()
        return local if self._reference is None else self._reference(local)


def edit_list_targets(
    frame: WaveletFrame,
    samples: np.ndarray,
    edits: Sequence[Any],
    *,
    registry=None,
    errors: str = "warn",
) -> WindowTargets:
    """Target magnitudes and warm starts of windows of a sound, for
    :func:`~scalgui.dsp.phase.rerender_spans`.

    Parameters
    ----------
    frame : WaveletFrame
        The frame the windows are analysed with (the render frame).
    samples : np.ndarray [shape=(channels, frames)]
        The whole source.
    edits : sequence of Edit or PluginEdit

    Returns
    -------
    WindowTargets
        ``targets(window)`` gives a window's target magnitudes and
        ``targets.reference(local)`` the coefficients its retrieval starts from.
    """
    return WindowTargets(frame, samples, edits, registry=registry, errors=errors)
