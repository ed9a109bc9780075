"""The document: a sound, its analysis, the edit list, undo, render and export. No Qt.

Everything the editor does to a sound goes through :class:`Document`, so a script can do
the same without a display::

    doc = Document.open("take.wav")
    doc.push(Edit(Rectangle(1.0, 1.5, 2000, 8000), "gain", -30))
    doc.render()
    doc.export("take-edited.wav")

Views subscribe to ``doc.events.changed`` (a psygnal signal carrying ``"analysis"``,
``"edits"``, ``"render"`` or ``"effects"``). Callbacks run in the thread that made the change: a GUI
that renders in a worker thread must hand the notification over to its own thread.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from psygnal import Signal

from ..audio import SaveReport, audio_info, load_audio, save_audio
from ..audio.effects import PLACEMENTS, EffectChain, apply_chain
from ..audio.errors import AudioWriteError, EffectError
from ..dsp.edits import SCALING_ACTIONS, Edit, TimeRange as _TimeShape, apply_edits, edit_weights, touched_spans
from ..dsp.frame import Coefficients, FrameSettings, WaveletFrame
from ..dsp.memory import check_analysis_memory
from ..dsp.phase import (
    EDITOR_STOP_GAIN_DB,
    NEW_CONTENT_DB,
    CancelToken,
    RenderCancelled,
    RetrievalProgress,
    RetrievalResult,
    RetrievalSettings,
    rerender_spans,
)
from ..dsp.raster import Raster, resample_raster, scalogram_raster
from ..plugins import PluginEdit, apply_edit_list, edit_list_targets
from .incremental import (
    OverviewCache,
    changed_spans,
    crop,
    edited_window,
    edits_reaching,
    pointwise,
    reach_s,
    reanalyse_span,
    update_span,
)

__all__ = ["Document", "DocumentEvents", "LAYERS", "DEFAULT_RENDER", "FIXED_RENDER"]

#: What a raster can show: the source, the edited target, the last render, or the
#: difference in dB between target and render (where a painted shape was not realised).
LAYERS = ("source", "target", "render", "difference")

#: Columns of the cached whole-file pictures that zoomed-out views are cut from.
OVERVIEW_WIDTH = 8192
#: Picture columns an analysis plans memory for: an overview of each layer.
OVERVIEW_PICTURE_COLUMNS = OVERVIEW_WIDTH * len(LAYERS)

#: Seconds a render may take before it starts no more iterations: past it the warm start
#: (the edit's magnitudes on the previous render's phase) is refined no further.
RENDER_BUDGET_S = 4.0
#: The editor's renders before the stopping rule and the budget: warm start from the source's phase, a fixed
#: 32 FGLA iterations (kept as the baseline ``scalgui bench render`` compares with).
FIXED_RENDER = RetrievalSettings(method="fgla", init="original", iterations=32)
#: Render settings of the editor: at most 32 iterations; where the edits only scale what
#: is there, they stop once they no longer buy convergence (``EDITOR_STOP_GAIN_DB``), and
#: no render iterates past its time budget (measured in docs/rendering.md).
DEFAULT_RENDER = RetrievalSettings(method="fgla", init="original", iterations=32, stop_gain_db=EDITOR_STOP_GAIN_DB,
                                   budget_s=RENDER_BUDGET_S)


class DocumentEvents:
    """Signals of a document."""

    changed = Signal(str)


class Document:
    """A sound being edited in the wavelet-magnitude domain.

    Parameters
    ----------
    samples : np.ndarray [shape=(channels, frames)]
        The source, float32.
    sample_rate : float
        In Hz.
    path : str or Path, optional
        Where the source came from (never overwritten by :meth:`export`).
    settings : FrameSettings, optional
        Analysis settings; default ``FrameSettings(sample_rate)``.
    device : str
        Torch device for analysis and rendering (``"auto"``: CUDA, MPS, then CPU).
    """

    def __init__(
        self,
        samples: np.ndarray,
        sample_rate: float,
        *,
        path: str | Path | None = None,
        settings: FrameSettings | None = None,
        device: str = "auto",
    ) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2 or samples.shape[1] == 0:
            raise ValueError(f"samples must be [channels, frames] with at least one frame, got {samples.shape}")
        if not np.all(np.isfinite(samples)):
            raise ValueError("samples contain NaN or infinite values")
        self.samples = np.ascontiguousarray(samples)
        self.sample_rate = float(sample_rate)
        self.path = Path(path) if path is not None else None
        self.device = device
        self.events = DocumentEvents()
        self._overviews = OverviewCache(OVERVIEW_WIDTH)
        self.events.changed.connect(self._forget_overviews)
        self._lock = threading.RLock()
        self._edits: list[Edit] = []
        self._redo: list[Edit] = []
        self._pending: list[tuple[float, float]] = []
        self._target: Coefficients | None = None
        self.rendered: np.ndarray | None = None
        self._rendered_coefficients: Coefficients | None = None
        # Effect chains (scalgui.audio.effects): the source chain turns the opened sound
        # into what is analysed; the render chain turns the render into what is heard.
        self.original_samples = self.samples
        self._effect_chains = {p: EffectChain(p) for p in PLACEMENTS}
        self._output_cache: tuple | None = None
        self.unsaved = False
        # Project state (scalgui.app.project): the .scalproj this document was opened from
        # or saved to, how renders resynthesise, and how the render is written.
        self.project_path: Path | None = None
        self.retrieval_settings: RetrievalSettings = DEFAULT_RENDER
        self.export_options: dict = {}
        self.settings = settings or FrameSettings(self.sample_rate)
        self._analyse()

    def _forget_overviews(self, what: str = "") -> None:
        # Edits, undos and redos log their spans as they land (_touched), so their
        # pictures are redrawn column by column; a render changes only the render's
        # pictures; anything else (a new analysis) changes them all.
        if what in ("edits", "render"):  # render() logs or forgets its own pictures
            return
        with self._lock:
            spans = touched_spans(self._edits, self.duration)
        self._overviews.reset(spans)

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(cls, path: str | Path, *, settings: FrameSettings | None = None, device: str = "auto", progress=None) -> "Document":
        """Load an audio file (any format pedalboard reads).

        Raises ``AudioError`` on bad input, and
        :class:`~scalgui.dsp.memory.AnalysisMemoryError` (a ValueError) before decoding
        when the file's analysis is planned to need more memory than is available.
        """
        info = audio_info(path)
        frame = WaveletFrame(settings or FrameSettings(info["sample_rate"]), device=device)
        check_analysis_memory(frame, info["frames"], info["channels"], resynthesis=False,
                              picture_columns=OVERVIEW_PICTURE_COLUMNS)
        audio = load_audio(path, progress=progress)
        return cls(audio.samples, audio.sample_rate, path=audio.path or path, settings=settings, device=device)

    @classmethod
    def from_samples(cls, samples: np.ndarray, sample_rate: float, **kwargs) -> "Document":
        return cls(samples, sample_rate, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def frames(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(self._edits)

    @property
    def can_undo(self) -> bool:
        return bool(self._edits)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def unrendered_edits(self) -> bool:
        """Whether edits changed the target since the last render."""
        return bool(self._pending)

    @property
    def pending_spans(self) -> tuple[tuple[float, float], ...]:
        """Time spans (s) the edits changed since the last render."""
        with self._lock:
            return tuple(self._pending)

    # ------------------------------------------------------------------ projects
    def save_project(self, path: str | Path, *, embed_source: bool | str = False, embed_render: bool = False) -> Path:
        """Save the work as a ``.scalproj`` project, atomically (see :mod:`scalgui.app.project`)."""
        from .project import save_project

        return save_project(self, path, embed_source=embed_source, embed_render=embed_render)

    @classmethod
    def open_project(cls, path: str | Path, *, locate=None, **kwargs) -> "Document":
        """Open a ``.scalproj`` project (see :func:`scalgui.app.project.open_project`)."""
        from .project import open_project

        return open_project(path, locate=locate, **kwargs)

    def restore(self, edits, *, rendered: np.ndarray | None = None, pending=None) -> None:
        """Replace the edit list and the render, without undo history (opening a project).

        Parameters
        ----------
        edits : sequence of Edit or PluginEdit
        rendered : np.ndarray [shape=(channels, frames)], optional
            A render of these edits, float32, the source's shape.
        pending : sequence of (float, float), optional
            Spans in seconds the render has not caught up with; default: every span the
            edits touch (all of them, when there is no render).
        """
        edits = list(edits)
        for edit in edits:
            if not isinstance(edit, (Edit, PluginEdit)):
                raise TypeError(f"expected an Edit or a PluginEdit, got {type(edit).__name__}")
        if rendered is not None and np.shape(rendered) != self.samples.shape:
            raise ValueError(f"render is {np.shape(rendered)}, the sound {self.samples.shape}")
        with self._lock:
            self._edits, self._redo, self._target = edits, [], None
            self.rendered = None if rendered is None else np.ascontiguousarray(rendered, dtype=np.float32)
            self._rendered_coefficients = None
            self._pending = []
            if rendered is None or pending is None:
                for edit in edits:
                    self._touched(edit)
            else:
                self._pending = [(float(a), float(b)) for a, b in pending]
        self.events.changed.emit("analysis")  # every picture is out of date

    # ------------------------------------------------------------------ analysis
    @property
    def render_settings(self) -> FrameSettings:
        """The frame renders invert on: the analysis settings with atoms twice as wide.

        Overlapping atoms make phase retrieval far better posed (measured in the README:
        on music, 12 voices with the bandwidth of 6 gets 7 dB closer than 12 and 12), while
        the picture keeps the sharper frame. Edits are in seconds and Hz, so both frames
        read the same edit list.
        """
        return self.settings.for_retrieval()

    def _analyse(self, settings: FrameSettings | None = None) -> None:
        """Analyse the source with ``settings`` (default: the current ones), which become
        the document's; refused before anything changes when the analysis is planned to
        need more memory than is available (AnalysisMemoryError, a ValueError)."""
        settings = settings or self.settings
        frame = WaveletFrame(settings, device=self.device)
        check_analysis_memory(frame, self.frames, self.channels, resynthesis=False,
                              picture_columns=OVERVIEW_PICTURE_COLUMNS)
        coefficients = frame.analyze(torch.from_numpy(self.samples))
        self.settings, self.frame, self.coefficients = settings, frame, coefficients
        self.render_frame = WaveletFrame(self.render_settings, device=self.device)
        self._target = None
        self._rendered_coefficients = None  # re-analysed on first use (_render_coefficients)

    def _render_coefficients(self) -> Coefficients | None:
        """The last render's coefficients on the picture frame, analysed on first use.

        Not at every render: they are as big as the source's (about 11 GB for an hour of
        stereo 44.1 kHz), and opening, editing, rendering and exporting never need them.
        """
        with self._lock:
            if self._rendered_coefficients is None and self.rendered is not None:
                self._rendered_coefficients = self.frame.analyze(torch.from_numpy(self.rendered))
            return self._rendered_coefficients

    def set_settings(self, settings: FrameSettings) -> None:
        """Re-analyse with other settings; edits (in seconds and Hz) are kept."""
        if settings.sample_rate != self.sample_rate:
            raise ValueError(f"settings are for {settings.sample_rate:g} Hz, the sound is at {self.sample_rate:g} Hz")
        with self._lock:
            self._analyse(settings)
        self.events.changed.emit("analysis")

    # ------------------------------------------------------------------ edits and undo
    def push(self, edit: Edit) -> None:
        """Apply ``edit`` on top of the others (one undo step)."""
        if not isinstance(edit, (Edit, PluginEdit)):
            raise TypeError(f"expected an Edit or a PluginEdit, got {type(edit).__name__}")
        if isinstance(edit, PluginEdit):
            # A plugin runs now, outside the lock (it may take minutes, and the GUI thread
            # takes the lock to play): one that fails raises PluginError, nothing is pushed.
            self._with_plugin_target(edit, lambda: self._redo.clear())
            return
        with self._lock:
            if self._target is not None and pointwise([edit]):
                # In place, over the edit's span only: a local edit of a long sound costs
                # what its span costs. A wide one drops the target: a picture rebuilds it.
                if not update_span(self.coefficients, self._target, [edit], edit.span(), fresh=False):
                    self._target = None
            elif self._target is not None:
                self._target = apply_edit_list(self.coefficients, [edit], onto=self._target)
            self._edits.append(edit)
            self._redo.clear()
            self._touched(edit)
        self.events.changed.emit("edits")

    def _with_plugin_target(self, edit: PluginEdit, commit: Callable[[], None], errors: str = "raise") -> None:
        """Append plugin ``edit``: its target computed without holding the lock, installed
        if nothing changed meanwhile (else computed again), then ``commit()`` under the lock."""
        for _ in range(3):
            with self._lock:
                base = self.target()
                state = (len(self._edits), self._edits[-1] if self._edits else None, self.coefficients)
            result = apply_edit_list(state[2], [edit], onto=base, errors=errors)
            with self._lock:
                now = (len(self._edits), self._edits[-1] if self._edits else None, self.coefficients)
                if self._target is base and all(a is b for a, b in zip(now, state)):
                    break
        else:  # the document kept changing: compute under the lock
            with self._lock:
                result = apply_edit_list(self.coefficients, [edit], onto=self.target(), errors=errors)
        with self._lock:
            self._target = result
            self._edits.append(edit)
            commit()
            self._touched(edit)
        self.events.changed.emit("edits")

    def undo(self) -> Edit | None:
        """Remove the last edit; returns it (``None`` when there is nothing to undo)."""
        with self._lock:
            if not self._edits:
                return None
            edit = self._edits.pop()
            self._redo.append(edit)
            if not (self._target is not None and pointwise([edit, *self._edits])
                    and update_span(self.coefficients, self._target, self._edits, edit.span(), fresh=True)):
                # Only the undone edit's span changes, recomputed from the source above;
                # after a wide or a plugin edit, a picture rebuilds the whole target.
                self._target = None
            self._touched(edit)
        self.events.changed.emit("edits")
        return edit

    def redo(self) -> Edit | None:
        """Re-apply the last undone edit."""
        with self._lock:
            if not self._redo:
                return None
            edit = self._redo[-1]
        if isinstance(edit, PluginEdit):
            def take_from_redo() -> None:
                if self._redo and self._redo[-1] is edit:
                    self._redo.pop()

            # Replaying must not fail because a plugin went missing: it warns instead.
            self._with_plugin_target(edit, take_from_redo, errors="warn")
            return edit
        with self._lock:
            if not self._redo or self._redo[-1] is not edit:
                return None  # another thread changed the history meanwhile
            self._redo.pop()
            self._edits.append(edit)
            if self._target is not None and pointwise([edit]):
                if not update_span(self.coefficients, self._target, [edit], edit.span(), fresh=False):
                    self._target = None
            elif self._target is not None:
                self._target = apply_edit_list(self.coefficients, [edit], onto=self._target, errors="warn")
            self._touched(edit)
        self.events.changed.emit("edits")
        return edit

    def _touched(self, edit: Edit) -> None:
        spans = touched_spans([edit], self.duration)
        self._pending.extend(spans)
        self._overviews.touched(spans)
        self.unsaved = True

    def target(self) -> Coefficients:
        """Target magnitudes: the source's with every edit applied.

        Later edits, undos and redos update the returned tensors in place over the spans
        they touch: clone them to keep a snapshot.
        """
        with self._lock:
            if self._target is None:
                self._target = apply_edit_list(self.coefficients, self._edits, errors="warn")
            return self._target

    # ------------------------------------------------------------------ pictures
    def raster(
        self,
        start_s: float,
        end_s: float,
        width: int,
        *,
        channel: int | str = "mean",
        layer: str = "target",
        floor_db: float = -120.0,
    ) -> Raster:
        """A picture of a layer for a time range (see :func:`scalogram_raster`).

        ``layer="difference"`` gives the target's level minus the render's, in dB.
        """
        channel = 0 if self.channels == 1 and channel in ("mean", "mid", "left") else channel
        if layer == "difference":
            wanted = self.raster(start_s, end_s, width, channel=channel, layer="target", floor_db=floor_db)
            got = self.raster(start_s, end_s, width, channel=channel, layer="render", floor_db=floor_db)
            return Raster(wanted.db - got.db, wanted.centre_hz, wanted.start_s, wanted.end_s)
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; choose one of: {', '.join(LAYERS)}")
        if (end_s - start_s) / width >= self.duration / OVERVIEW_WIDTH:
            # Zoomed out: cut the picture from a cached whole-file overview, so that
            # panning and zooming a long file stays at screen rate. After an edit, an
            # undo or a redo only the columns of the spans it touched are drawn again.
            overview = self._overviews.picture(
                (layer, channel, floor_db),
                self.duration,
                lambda s, e, w: self._raster(s, e, w, channel, layer, floor_db, strip=w < OVERVIEW_WIDTH),
                margin_s=reach_s(self.coefficients),
                # Outside the spans edits touched, the target is the source.
                seed=(lambda: self._overviews.cached(("source", channel, floor_db))) if layer == "target" else None,
            )
            return resample_raster(overview, start_s, end_s, width)
        return self._raster(start_s, end_s, width, channel, layer, floor_db)

    def _raster(self, start_s, end_s, width, channel, layer, floor_db, *, strip: bool = False) -> Raster:
        with self._lock:
            coeffs, magnitudes = self.coefficients, None
            edits = list(self._edits) if layer == "target" else []
            if edits and (self._target is not None or not strip or not pointwise(edits)):
                magnitudes = self.target()
            elif layer == "render" and self.rendered is not None:
                coeffs = self._render_coefficients()
        if edits and magnitudes is None:
            # A strip of an overview before the whole target was ever needed: edit only
            # the coefficients it shows (a local edit then never costs the whole sound).
            coeffs, magnitudes = edited_window(coeffs, edits, start_s, end_s)
        return scalogram_raster(
            coeffs, start_s=start_s, end_s=end_s, width=width, channel=channel, floor_db=floor_db, magnitudes=magnitudes
        )

    def edit_mask(self, start_s: float, end_s: float, width: int) -> np.ndarray:
        """Where the edits act and how strongly: float32 ``[bands, width]`` in [0, 1]."""
        column_s = (end_s - start_s) / width
        if not any(lo <= end_s + column_s and hi >= start_s - column_s for lo, hi in (e.span() for e in self.edits)):
            # Nothing acts here: skip the raster (it cost 15 ms of every zoomed-in redraw).
            return np.zeros((len(self.frame.bands.wavelet_indices), width), np.float32)
        if (end_s - start_s) / width >= self.duration / OVERVIEW_WIDTH:
            # Zoomed out: cut from a cached whole-file mask, redrawn only where edits land.
            bands = self.frame.bands
            rows = bands.wavelet_indices
            whole = self._overviews.picture(
                ("mask",), self.duration, self._mask_raster, margin_s=reach_s(self.coefficients),
                # No edit acts outside the spans edits touched: start from an empty mask.
                seed=lambda: Raster(np.full((len(rows), OVERVIEW_WIDTH), -120.0, np.float32),
                                    bands.centre_hz[rows].copy(), 0.0, self.duration),
            )
            picture = resample_raster(whole, start_s, end_s, width)
        else:
            picture = self._mask_raster(start_s, end_s, width)
        return np.clip(10.0 ** (picture.db / 20.0), 0.0, 1.0).astype(np.float32) * (picture.db > -119.9)

    def _mask_raster(self, start_s: float, end_s: float, width: int) -> Raster:
        coeffs = crop(self.coefficients, start_s, end_s)  # only what the picture shows
        mask = [torch.zeros(g.shape[-2:], dtype=torch.float32) for g in coeffs.groups]
        for edit in self.edits:
            for g, r, index, w in edit_weights(coeffs, edit):
                weight = torch.as_tensor(w, dtype=torch.float32)
                mask[g][r, index] = torch.maximum(mask[g][r, index], weight)
        return scalogram_raster(
            coeffs.with_groups(mask),
            start_s=start_s,
            end_s=end_s,
            width=width,
            channel=0,
            floor_db=-120.0,
        )

    def band_audio(self, f0_hz: float, f1_hz: float, *, layer: str = "source") -> np.ndarray:
        """The source (or the last render) limited to ``f0_hz``..``f1_hz``, for listening.

        The wavelet bands whose centres lie in the band keep their coefficients, the
        others are zeroed with a one-band raised-cosine edge, and the result is
        resynthesised through the dual frame. Returns float32 ``[channels, frames]``.
        """
        if not 0 <= f0_hz < f1_hz:
            raise ValueError(f"band needs 0 <= f0 < f1, got {f0_hz} to {f1_hz} Hz")
        with self._lock:
            if layer == "render" and self.rendered is not None:
                coeffs = self._render_coefficients()
            elif layer in ("source", "render"):
                coeffs = self.coefficients
            else:
                raise ValueError(f"band audio comes from 'source' or 'render', not {layer!r}")
            frame = self.frame
        table = frame.bands
        octave = 1.0 / frame.settings.voices_per_octave
        log_centre = np.log2(np.maximum(table.centre_hz, 1e-3))
        lo, hi = np.log2(max(f0_hz, 1e-3)), np.log2(f1_hz)
        outside = np.maximum(lo - log_centre, log_centre - hi)
        weight = np.where(outside <= 0, 1.0, np.where(outside >= octave, 0.0, 0.5 + 0.5 * np.cos(np.pi * outside / octave)))
        weight[table.kind != "wavelet"] = 0.0
        groups = []
        for g, tensor in enumerate(coeffs.groups):
            members = np.flatnonzero(table.group == g)
            w = torch.zeros(tensor.shape[-2], dtype=frame.dtype)
            w[torch.as_tensor(table.row[members])] = torch.as_tensor(weight[members], dtype=frame.dtype)
            groups.append(tensor * w[:, None].to(tensor.device))
        signal = frame.synthesize(coeffs.with_groups(groups))
        return signal.detach().to("cpu", torch.float32).numpy().reshape(self.channels, -1)

    # ------------------------------------------------------------------ effects
    def effect_chain(self, placement: str = "render") -> EffectChain:
        """The chain at ``placement``: ``"source"`` (before analysis) or ``"render"`` (after it)."""
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        with self._lock:
            return self._effect_chains[placement]

    def set_effect_chain(self, chain: EffectChain) -> None:
        """Put ``chain`` at its placement, replacing the chain there.

        A source chain runs on the opened sound at once and the result is re-analysed:
        edits (in seconds and Hz) are kept and all become pending, and the previous render
        is dropped, since it was made from the old source. A render chain is tried on the
        first second of the render, so that a broken effect fails here and not at export.
        Emits ``"analysis"`` (source chains) and then ``"effects"``.

        Raises
        ------
        EffectError
            An effect that cannot be built or fails while processing; the document is
            left exactly as it was.
        """
        if not isinstance(chain, EffectChain):
            raise TypeError(f"expected an EffectChain, got {type(chain).__name__}")
        with self._lock:
            if chain == self._effect_chains[chain.placement]:
                return
            base = self.rendered if self.rendered is not None else self.samples
        if chain.placement == "source":
            processed = self.original_samples
            if chain.active:
                processed = apply_chain(chain, self.original_samples, self.sample_rate)
            with self._lock:
                self._effect_chains["source"] = chain
                self.samples = processed
                self.rendered = None
                self._rendered_coefficients = None
                self._analyse()
                self._pending = []
                for edit in self._edits:
                    self._touched(edit)
                self.unsaved = True
            self.events.changed.emit("analysis")
        else:
            apply_chain(chain, base[:, : int(min(base.shape[1], self.sample_rate))], self.sample_rate)
            with self._lock:
                self._effect_chains["render"] = chain
                self.unsaved = True
        self.events.changed.emit("effects")

    def output(self) -> np.ndarray:
        """What is played as the render and exported: the render (or the source, when
        nothing was rendered) through the render chain, float32 ``[channels, frames]``.

        Cached until the render or the chain changes; do not modify the array.
        """
        with self._lock:
            base = self.rendered if self.rendered is not None else self.samples
            chain = self._effect_chains["render"]
            cached = self._output_cache
        if not chain.active:
            return base
        if cached is not None and cached[0] is base and cached[1] == chain:
            return cached[2]
        out = apply_chain(chain, base, self.sample_rate)
        with self._lock:
            self._output_cache = (base, chain, out)
        return out

    def preview_effects(
        self, chain: EffectChain, start_s: float = 0.0, end_s: float | None = None, *, tail_s: float = 1.0
    ) -> tuple[float, np.ndarray]:
        """Hear ``chain`` on a short span without changing anything: ``(start_s, samples)``.

        A source chain runs on the opened sound, a render chain on the render (or on the
        source when nothing was rendered). The span (default: 4 s from ``start_s``) is
        followed by ``tail_s`` seconds of silence, so that reverbs and delays ring out.
        Returns float32 ``[channels, frames]`` starting at ``start_s`` seconds.
        """
        end_s = start_s + 4.0 if end_s is None else end_s
        lo = int(round(min(max(start_s, 0.0), self.duration) * self.sample_rate))
        hi = int(round(min(max(end_s, 0.0), self.duration) * self.sample_rate))
        if hi <= lo:
            raise ValueError(f"nothing to preview between {start_s:g} and {end_s:g} s (the sound is "
                             f"{self.duration:.3f} s long)")
        with self._lock:
            if chain.placement == "source":
                base = self.original_samples
            else:
                base = self.rendered if self.rendered is not None else self.samples
        span = np.concatenate([base[:, lo:hi], np.zeros((self.channels, int(tail_s * self.sample_rate)), np.float32)],
                              axis=1)
        return lo / self.sample_rate, apply_chain(chain, span, self.sample_rate)

    # ------------------------------------------------------------------ render and export
    def render(
        self,
        settings: RetrievalSettings | None = None,
        *,
        progress: Callable[[RetrievalProgress], None] | None = None,
        cancel: CancelToken | None = None,
        keep_partial: bool = False,
        focus_s: float | None = None,
        draft: Callable[[float, np.ndarray], None] | None = None,
        refine: bool = False,
    ) -> RetrievalResult:
        """Resynthesise the spans the edits touched since the last render.

        Phase retrieval runs only over those spans (plus the atoms' reach), warm-started
        from the previous render's phase; everything else is kept bit for bit. How much
        retrieval a span gets follows what its edits need (see ``rerender_spans``'s
        ``only_scaling`` and :data:`DEFAULT_RENDER`). Blocking: a GUI calls it from a
        worker thread.

        A cancel (``cancel``, checked between stages, between the segments of long
        transforms and between iterations) changes nothing: the result says
        ``cancelled`` and the previous render and the pending spans stay as they were.
        With ``keep_partial`` a cancelled render keeps what it finished and leaves the
        spans pending.

        Progressive: the spans nearest ``focus_s`` seconds (what the user looks at or
        plays) render first, and ``draft(start_s, samples)`` receives each span as soon
        as it is final (float32 ``[channels, frames]`` from ``start_s`` seconds, the
        render chain not applied), so that playback can start before the render ends.
        The document itself changes only when the whole render is done.

        ``refine``: render every span the edits touch again, pending or not, from the
        last render and with no time budget (the stopping rule still applies): what a
        render that the budget cut short would have reached.
        """
        settings = settings or self.retrieval_settings
        if refine:
            settings = replace(settings, budget_s=0.0)
        with self._lock:
            base = self.rendered if self.rendered is not None else self.samples
            pending = list(self._pending)
            spans = touched_spans(self._edits, self.duration) if refine else pending
            edits = list(self._edits)
            frame = self.render_frame
            samples = self.samples
        if not spans:
            signal = torch.from_numpy(base)
            return RetrievalResult(signal, -math.inf, 0, 0.0, False, [])
        started = time.perf_counter()
        try:
            result = self._rerender(frame, base, samples, spans, edits, settings, progress, cancel, keep_partial,
                                    focus_s=focus_s, draft=draft)
        except RenderCancelled:
            return RetrievalResult(torch.from_numpy(base), math.nan, 0, time.perf_counter() - started, True, [],
                                   stopped="cancelled")
        if result.cancelled and not keep_partial:
            return replace(result, signal=torch.from_numpy(base))
        rendered = result.signal.detach().to("cpu", torch.float32).numpy().copy()
        with self._lock:
            if cancel is not None and cancel.cancelled and not keep_partial:
                # Cancelled after the last check: the window that asked has let go of it.
                return replace(result, signal=torch.from_numpy(base), cancelled=True, stopped="cancelled")
            previous, coefficients = self.rendered, self._rendered_coefficients
            self.rendered = rendered
            changed = None
            if previous is not None and coefficients is not None:
                # The render changed only the spans it re-rendered: its coefficients and
                # pictures are brought up to date there (a long file's render view then
                # costs what the edit costs, not a whole analysis).
                changed = changed_spans(previous, rendered, self.sample_rate)
                for lo_s, hi_s in changed:
                    reanalyse_span(coefficients, torch.from_numpy(rendered), lo_s, hi_s)
            else:
                self._rendered_coefficients = None  # analysed when a picture or a band asks
            if not result.cancelled:
                self._pending = [s for s in self._pending if s not in pending]
            self.unsaved = True
        if changed is None:
            self._overviews.forget("render")
        else:
            # Coefficients change as far as the longest atom reaches beyond the samples.
            reach = self.frame.pad / self.sample_rate
            self._overviews.touched([(lo - reach, hi + reach) for lo, hi in changed], render=True)
        self.events.changed.emit("render")
        return result

    @staticmethod
    def _rerender(frame, base, samples, spans, edits, settings, progress, cancel, keep_partial, *, focus_s=None,
                  draft=None) -> RetrievalResult:
        targets = edit_list_targets(frame, samples, edits)  # plugin edits see the whole sound

        def local_target(window: Coefficients) -> Coefficients:
            # The edits act on the source's magnitudes in that window; the previous
            # render only supplies the phase to start from.
            if base is samples:
                return targets(window)  # the window is the source's analysis already
            end = window.offset + window.length
            source = frame.analyze(torch.from_numpy(samples[:, window.offset : end]))
            source.offset = window.offset
            return targets(source)

        def only_scaling(start_s: float, end_s: float) -> bool:
            return all(
                isinstance(edit, Edit) and edit.action in SCALING_ACTIONS
                and (edit.action != "gain" or edit.amount_db <= NEW_CONTENT_DB)
                for edit in edits if edit.span()[0] <= end_s and edit.span()[1] >= start_s
            )

        def local_start(window: Coefficients) -> Coefficients:
            return apply_edits(window, edits_reaching(window, edits), keep_phase=True, in_place=True)

        return rerender_spans(
            frame, torch.from_numpy(base), spans, local_target, settings, progress=progress, cancel=cancel,
            local_reference=targets.reference,  # where a plugin made sound, its phase
            only_scaling=only_scaling, keep_partial=keep_partial,
            # The first render's warm start scales the source's own coefficients.
            local_start=local_start if base is samples else None,
            focus=focus_s,
            on_span=None if draft is None else lambda lo, hi, signal: draft(
                lo / frame.sample_rate, signal[..., lo:hi].detach().to("cpu", torch.float32).numpy().copy()),
        )

    def prepare_render(self) -> None:
        """Build the render frame's transform plans now, so that the first render does not
        (on a long sound, a noticeable share of its time). Thread-safe: a GUI calls it on a worker
        when the first edit lands."""
        frame = self.render_frame
        n = frame.padded_length(self.frames)
        frame._plan(frame.segment_length if n > frame.segment_length else n)

    def preview(
        self,
        span: tuple[float, float] | None = None,
        *,
        iterations: int = 0,
        cancel: CancelToken | None = None,
    ) -> tuple[float, np.ndarray]:
        """A quick listen to an edit before the real render: ``(start_s, samples)``.

        Re-inverts ``span`` (default: the last edit's) as a render would, with
        ``iterations`` iterations (default none: the warm start, the edit's magnitudes on
        the previous render's phase, and PGHI's where the edit made new content), and
        returns that stretch of audio, float32 ``[channels, frames]``, starting at
        ``start_s`` seconds. Nothing in the document changes; a render afterwards
        refines the same span properly. Raises :class:`RenderCancelled` when cancelled.
        """
        with self._lock:
            if span is None:
                if not self._edits:
                    raise ValueError("nothing to preview: there are no edits")
                spans = touched_spans([self._edits[-1]], self.duration)
            else:
                spans = touched_spans([Edit(_TimeShape(*span))], self.duration)
            if not spans:
                raise ValueError(f"the span {span} lies outside the sound (0 to {self.duration:.3f} s)")
            base = self.rendered if self.rendered is not None else self.samples
            edits = list(self._edits)
            frame = self.render_frame
            samples = self.samples
        lo_s, hi_s = spans[0]
        settings = RetrievalSettings(method="fgla", init="original", iterations=int(iterations))
        result = self._rerender(frame, base, samples, [(lo_s, hi_s)], edits, settings, None, cancel, False)
        lo, hi = int(lo_s * self.sample_rate), int(np.ceil(hi_s * self.sample_rate))
        audio = result.signal[..., lo:hi].detach().to("cpu", torch.float32).numpy().reshape(self.channels, -1)
        return lo / self.sample_rate, audio

    def export(
        self,
        path: str | Path,
        *,
        bit_depth: int | None = None,
        quality: str | None = None,
        clip: str = "error",
        render_first: bool = True,
    ) -> SaveReport:
        """Write the render (or the source, when nothing was edited), through the render
        effect chain, to ``path``.

        Never overwrites the opened file. Unrendered edits are rendered first unless
        ``render_first`` is False, in which case the last render is written.
        """
        if render_first and self.unrendered_edits:
            self.render()
        try:
            signal = self.output()  # the render chain applies to what is exported
        except EffectError as exc:  # reported like any other failed write; nothing is written
            raise AudioWriteError(path, str(exc)) from None
        report = save_audio(
            path, signal, self.sample_rate, bit_depth=bit_depth, quality=quality, clip=clip, source_path=self.path
        )
        self.unsaved = False
        return report
