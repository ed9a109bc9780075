"""Renders cost what the edit needs: the stopping rule, the time budget, edits that only
scale, and honest progress (stages, a fraction that only grows)."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from scalgui.app.document import DEFAULT_RENDER, FIXED_RENDER, Document
from scalgui.dsp import signals
from scalgui.dsp.edits import Band, Edit, Rectangle, Stroke, apply_edits
from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.dsp.phase import STAGES, RetrievalSettings, rerender_spans, retrieve

SR = 22050


def example_doc(device="cpu", seconds=3.0):
    samples = signals.example_sound(SR)[:, : int(seconds * SR)]
    return Document.from_samples(samples, SR, settings=FrameSettings(SR, 12, fmin=50.0), device=device)


def rendered(edit, settings, device="cpu"):
    doc = example_doc(device)
    doc.push(edit)
    return doc, doc.render(settings)


@pytest.mark.parametrize("gain_db", [-30.0, 12.0])
def test_a_gain_edit_stops_early_within_0_2_db_of_the_fixed_render(torch_device, gain_db):
    edit = Edit(Rectangle(0.4, 1.4, 300.0, 3000.0), "gain", gain_db)
    _, fixed = rendered(edit, FIXED_RENDER, torch_device)
    _, adaptive = rendered(edit, DEFAULT_RENDER, torch_device)
    assert fixed.iterations == 32 and fixed.stopped == "iterations"
    assert adaptive.stopped == "converged" and adaptive.iterations < 32
    assert adaptive.spectral_convergence_db <= fixed.spectral_convergence_db + 0.2


def test_new_content_runs_every_iteration(torch_device):
    paint = Edit(Stroke(((0.8, 1500.0), (1.6, 3000.0)), radius_s=0.05, radius_oct=1 / 24), "paint", -20.0)
    _, fixed = rendered(paint, FIXED_RENDER, torch_device)
    _, adaptive = rendered(paint, DEFAULT_RENDER, torch_device)
    assert adaptive.iterations == 32 and adaptive.stopped == "iterations"
    assert adaptive.spectral_convergence_db == pytest.approx(fixed.spectral_convergence_db, abs=0.05)
    _, hurried = rendered(paint, replace(DEFAULT_RENDER, budget_s=1e-3), torch_device)  # nor the budget
    assert hurried.iterations == 32 and hurried.stopped == "iterations"


def test_the_stopping_rule_stops_a_converged_run_and_lets_an_improving_one_go_on():
    frame = WaveletFrame(FrameSettings(SR, 12, fmin=50.0), device="cpu")
    x = torch.from_numpy(signals.example_sound(SR)[0, : SR])
    coefficients = frame.analyze(x)
    target = coefficients.map(torch.abs)
    rule = RetrievalSettings(method="fgla", init="original", iterations=40, stop_gain_db=0.1)
    converged = retrieve(frame, target, rule, reference=coefficients)  # starts at the answer
    assert converged.stopped == "converged" and converged.iterations == rule.stop_window
    improving = retrieve(frame, target, replace(rule, init="random", iterations=24))
    assert improving.stopped == "iterations" and improving.iterations == 24
    best = np.minimum.accumulate(improving.history)
    assert best[-1] < best[-1 - rule.stop_window] - rule.stop_gain_db  # still buying convergence


def test_a_render_over_budget_is_the_warm_start_and_still_the_edit():
    doc, result = rendered(Edit(Band(1000.0, 4000.0), "gain", -30.0),
                           replace(DEFAULT_RENDER, budget_s=1e-3))
    assert result.iterations == 0 and result.stopped == "budget"
    assert math.isfinite(result.spectral_convergence_db) and result.spectral_convergence_db < -15
    render = doc.raster(0.5, 2.5, 16, channel="left", layer="render")
    source = doc.raster(0.5, 2.5, 16, channel="left", layer="source")
    rows = (render.centre_hz > 1400) & (render.centre_hz < 2800)
    assert np.median(source.db[rows] - render.db[rows]) > 20


def test_progress_names_each_stage_and_only_grows():
    doc = example_doc()
    doc.push(Edit(Rectangle(0.4, 0.8, 300.0, 3000.0), "gain", -20.0))
    doc.push(Edit(Rectangle(2.2, 2.6, 300.0, 3000.0), "erase"))  # two spans, rendered one after the other
    reports = []
    result = doc.render(FIXED_RENDER, progress=reports.append)
    stages = [r.stage for r in reports]
    assert set(stages) <= set(STAGES)
    assert stages[0] == "analysing" and "initial phase" in stages and stages[-1] == "iterating"
    assert stages.count("analysing") == 4  # before and after each span's analysis
    fractions = [r.fraction for r in reports]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)
    iterating = [r for r in reports if r.stage == "iterating"]
    assert all(r.eta_s >= 0 for r in iterating) and iterating[-1].eta_s == pytest.approx(0.0, abs=1e-9)
    assert all(math.isnan(r.spectral_convergence_db) for r in reports if r.stage != "iterating")
    assert result.iterations == 32


def test_the_warm_start_of_scaling_edits_scales_the_source_coefficients_themselves():
    frame = WaveletFrame(FrameSettings(SR, 12, fmin=50.0).for_retrieval(), device="cpu")
    x = torch.from_numpy(signals.example_sound(SR)[:, : 2 * SR])
    edits = [Edit(Band(500.0, 2000.0), "gain", -30.0), Edit(Rectangle(0.5, 1.0, 100.0, 4000.0), "erase"),
             Edit(Rectangle(0.2, 1.5, 300.0, 1000.0), "restore")]
    coefficients = frame.analyze(x)
    magnitudes = apply_edits(coefficients, edits)
    for chosen in (edits, edits[:2]):  # with a restore the source is read as it was: not in place
        scaled = apply_edits(coefficients.map(torch.clone), chosen, keep_phase=True, in_place=True)
        wanted = apply_edits(coefficients, chosen)
        for got, want, source in zip(scaled.groups, wanted.groups, coefficients.groups):
            torch.testing.assert_close(got.abs(), want, rtol=1e-5, atol=1e-7)
            same_phase = (got * source.conj()).imag.abs() <= 1e-5 * (got.abs() * source.abs() + 1e-12)
            assert bool(same_phase.all())
    with pytest.raises(ValueError, match="only scale"):
        apply_edits(coefficients, [Edit(Rectangle(0.5, 1.0, 100.0, 4000.0), "paint", -20.0)], keep_phase=True)
    # Through a render: the first render's warm start (from the scaled coefficients) is the
    # warm start any render takes (target magnitudes on the phase it starts from).
    spans = [(0.0, 2.0)]
    settings = RetrievalSettings(method="fgla", init="original", iterations=0)
    general = rerender_spans(frame, x, spans, lambda c: apply_edits(c, edits), settings,
                             only_scaling=lambda a, b: True)
    direct = rerender_spans(frame, x, spans, lambda c: apply_edits(c, edits), settings,
                            only_scaling=lambda a, b: True, local_start=lambda c: apply_edits(c, edits, keep_phase=True))
    torch.testing.assert_close(direct.signal, general.signal, rtol=0, atol=1e-5)
    assert direct.spectral_convergence_db == pytest.approx(general.spectral_convergence_db, abs=0.01)
    assert magnitudes.groups[0].dtype == torch.float32


def test_spans_near_the_focus_render_first_and_arrive_final_before_the_end():
    doc = Document.from_samples(signals.example_sound(SR), SR, settings=FrameSettings(SR, 12, fmin=50.0),
                                device="cpu")
    doc.push(Edit(Rectangle(0.5, 0.7, 500.0, 2000.0), "gain", -20.0))
    doc.push(Edit(Rectangle(4.8, 5.0, 500.0, 2000.0), "erase"))
    drafts = []
    doc.render(DEFAULT_RENDER, focus_s=5.5, draft=lambda start_s, samples: drafts.append((start_s, samples)))
    assert [start < 3.0 for start, _ in drafts] == [False, True]  # the focus's span first
    for start_s, samples in drafts:  # each draft is final: what the render holds there
        lo = int(round(start_s * SR))
        assert np.array_equal(samples, doc.rendered[:, lo : lo + samples.shape[1]])


def test_a_local_plugin_runs_on_the_rendered_window_and_gives_the_whole_sounds_target():
    from scalgui.plugins import PluginEdit, default_registry, edit_list_targets

    samples = signals.example_sound(SR)
    frame = WaveletFrame(FrameSettings(SR, 12, fmin=50.0).for_retrieval(), device="cpu")
    transpose = default_registry().get("transpose")
    assert transpose.local
    edit = PluginEdit.create(transpose, {"semitones": 7.0}, Rectangle(2.0, 3.0, 200.0, 2000.0))
    targets = edit_list_targets(frame, samples, [edit])
    start = (int(1.0 * SR) // frame.max_hop) * frame.max_hop
    window = frame.analyze(torch.from_numpy(samples[:, start : start + 4 * SR]))
    window.offset = start
    local = targets(window)  # the plugin on the window alone
    assert targets.reference(window) is window  # the warm start: the window's own analysis
    assert targets._delta is None  # the whole sound was neither analysed nor edited
    whole = targets._replay()(window)  # the whole sound's replay, cut to the window
    for g, (a, b) in enumerate(zip(local.groups, whole.groups)):
        hop = frame.group_hops[g]
        inner = slice(frame.context // hop, (4 * SR - frame.context) // hop)  # where the window is the whole
        torch.testing.assert_close(a[..., inner], b[..., inner], rtol=1e-3, atol=1e-4 * float(b.max()))
    changed = max(float((a - w.abs()).abs().max() / w.abs().max()) for a, w in zip(local.groups, window.groups))
    assert changed > 0.1  # the transpose did move content


def test_refine_renders_every_edited_span_again_without_the_budget():
    doc = example_doc()
    doc.push(Edit(Band(1000.0, 4000.0), "gain", -30.0))
    quick = doc.render(replace(DEFAULT_RENDER, budget_s=1e-3))
    assert quick.iterations == 0 and not doc.unrendered_edits
    assert doc.render(DEFAULT_RENDER).iterations == 0  # nothing pending: nothing to do
    refined = doc.render(replace(DEFAULT_RENDER, budget_s=1e-3), refine=True)
    assert refined.iterations > 0 and refined.stopped in ("converged", "iterations")
    assert refined.spectral_convergence_db < quick.spectral_convergence_db - 0.2
    assert not doc.unrendered_edits
