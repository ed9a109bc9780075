"""``scalgui bench render`` on short sounds: it runs through the command line, and its
table and JSON hold every row with finite, mutually consistent numbers (never timings
against targets: those are the benchmark's to report)."""
import contextlib
import io
import json
import math

import numpy as np
import pytest

from scalgui.app.document import DEFAULT_RENDER, FIXED_RENDER
from scalgui.audio import save_audio
from scalgui.bench import render as bench_render
from scalgui.cli import main
from scalgui.dsp import signals

SONG_S = 1.5
CORPUS_FILE_S = 1.0
SAMPLE_RATE = 44100
KINDS = ("band", "time range", "rectangle", "stroke erase", "paint", "transpose")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One quick run on a generated stereo song and on a stand-in corpus of one mono file
    (the real corpus is never needed): ``(exit code, stdout, JSON results)``."""
    folder = tmp_path_factory.mktemp("bench-render")
    corpus = folder / "corpus"
    corpus.mkdir()
    speech_like = signals.noise_bursts(CORPUS_FILE_S, SAMPLE_RATE, seed=3)
    save_audio(corpus / "Front_Center.wav", np.asarray(speech_like, np.float32)[None, :], SAMPLE_RATE)
    out = folder / "render.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["bench", "render", "--seconds", str(SONG_S), "--quick", "--corpus", str(corpus),
                     "--json", str(out)])
    return code, stdout.getvalue(), json.loads(out.read_text()) if out.exists() else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_the_run_succeeds_and_covers_both_sounds(bench_run):
    code, out, results = bench_run
    assert code == 0
    assert results["benchmark"] == "render"
    sounds = results["sounds"]
    assert [s["channels"] for s in sounds] == [2, 1]
    assert sounds[0]["duration_s"] == pytest.approx(SONG_S, abs=1e-3)
    assert sounds[1]["sound"].startswith("Front_Center.wav")
    assert sounds[1]["duration_s"] == pytest.approx(CORPUS_FILE_S, abs=1e-3)
    assert "## scalgui bench render" in out
    for sound in sounds:
        assert f"### {sound['sound']}" in out


def test_every_edit_row_is_there_with_finite_numbers(bench_run):
    _, out, results = bench_run
    for sound in results["sounds"]:
        rows = sound["rows"]
        assert [r["kind"] for r in rows] == list(KINDS)
        for row in rows:
            assert row["edit"] in out
            for side in ("fixed", "adaptive"):
                for key in ("seconds", "convergence_db"):
                    assert _finite(row[side][key]), (row["edit"], side, key)
                assert row[side]["seconds"] > 0
            for key in ("speedup", "convergence_difference_db", "mrstft_adaptive_vs_fixed_db", "target_s"):
                assert _finite(row[key]), (row["edit"], key)


def test_the_rows_numbers_agree_with_each_other(bench_run):
    _, _, results = bench_run
    for sound in results["sounds"]:
        for row in sound["rows"]:
            fixed, adaptive = row["fixed"], row["adaptive"]
            assert row["speedup"] == pytest.approx(fixed["seconds"] / adaptive["seconds"])
            difference = adaptive["convergence_db"] - fixed["convergence_db"]
            assert row["convergence_difference_db"] == pytest.approx(difference)
            assert row["time_met"] == (adaptive["seconds"] < row["target_s"])
            assert row["quality_met"] == (row["convergence_difference_db"] <= bench_render.QUALITY_TOLERANCE_DB)
            assert row["target_s"] == bench_render.TIME_TARGETS_S[row["kind"]]
            # A short sound is one span: today's render runs its fixed count once, the
            # adaptive one no more than its own limit.
            assert fixed["iterations"] == FIXED_RENDER.iterations
            assert 0 <= adaptive["iterations"] <= DEFAULT_RENDER.iterations
            # Both renders get closer to the edited target than silence would (0 dB),
            # and closer to each other than to silence.
            assert fixed["convergence_db"] < 0 and adaptive["convergence_db"] < 0
            assert row["mrstft_adaptive_vs_fixed_db"] < 0
            lo, hi = row["span_s"]
            assert 0 <= lo < hi <= sound["duration_s"]
            if not row["local"]:
                # Over the whole sound the benchmark's measure is the render's own figure.
                assert lo == 0 and hi == pytest.approx(sound["duration_s"])
                for side in (fixed, adaptive):
                    if side["reported_convergence_db"] is not None:
                        assert side["convergence_db"] == pytest.approx(side["reported_convergence_db"], abs=0.05)


def test_local_edits_cover_half_of_a_short_sound_at_its_loudest(bench_run):
    _, _, results = bench_run
    for sound in results["sounds"]:
        width = min(bench_render.LOCAL_SPAN_S, sound["duration_s"] / 2)
        for row in sound["rows"]:
            if row["local"]:
                lo, hi = row["span_s"]
                # The rectangles' feather (10 ms) reaches a little beyond the stretch.
                assert hi - lo == pytest.approx(width, abs=0.03), row["edit"]


def test_the_table_shows_the_json_figures(bench_run):
    _, out, results = bench_run
    # The song's render table: the corpus file's and the preview table name the same edits.
    table = out.split("### ")[1].split("\n\n")[1]
    assert table.startswith("| edit ")
    lines = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    for row in results["sounds"][0]["rows"]:
        line = lines[row["edit"]]
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == f"{row['fixed']['seconds']:.2f}"
        assert cells[3] == f"{row['adaptive']['seconds']:.2f}"
        assert cells[5] == f"{row['fixed']['iterations']} / {row['adaptive']['iterations']}"
        assert cells[8] == f"{row['convergence_difference_db']:+.2f}"
        assert cells[11] == ("met" if row["time_met"] else "not met")


def test_previews_are_timed_after_every_local_edit(bench_run):
    _, out, results = bench_run
    song = results["sounds"][0]
    previews = song["preview"]
    assert [p["edit"] for p in previews] == [r["edit"] for r in song["rows"] if r["local"]]
    width = min(bench_render.LOCAL_SPAN_S, song["duration_s"] / 2)
    for preview in previews:
        assert _finite(preview["seconds"]) and preview["seconds"] > 0
        assert preview["met"] == (preview["seconds"] < bench_render.PREVIEW_TARGET_S)
        # The preview's audio covers the edit's stretch.
        assert preview["preview_frames"] >= 0.95 * width * SAMPLE_RATE
    assert "| preview after" in out
    assert "preview" not in results["sounds"][1]  # previews and cancels: the song only


def test_cancel_rows_cover_every_stage_of_both_settings(bench_run):
    _, out, results = bench_run
    cancels = results["sounds"][0]["cancel"]
    assert [(c["settings"], c["stage"]) for c in cancels] == [
        (side, stage) for side in ("fixed", "adaptive") for stage in bench_render.STAGES]
    assert any(c["reached"] for c in cancels if c["settings"] == "fixed")
    for c in cancels:
        assert _finite(c["render_s"]) and c["render_s"] > 0
        if c["reached"]:
            assert _finite(c["latency_s"]) and c["latency_s"] >= 0
            assert 0 <= c["cancel_at_s"] <= c["render_s"]
            assert c["cancel_at_s"] + c["latency_s"] == pytest.approx(c["render_s"], abs=1e-6)
        else:  # a stage this render does not go through: not applicable
            assert c["latency_s"] is None and c["met"] is None
        for key in ("render_unchanged", "edits_unchanged", "pending_unchanged"):
            assert isinstance(c[key], bool)
        if c["met"]:
            assert c["latency_s"] < bench_render.CANCEL_TARGET_S and c["render_unchanged"]
    assert "| settings" in out and "latency s" in out


@pytest.mark.parametrize("argv, message", [
    (["--corpus", "/nonexistent/corpus"], "does not exist"),
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--seconds", "0"], "--seconds must be positive"),
    (["--device", "no-such-device"], "not a torch device"),
])
def test_bad_options_end_with_one_error_line(argv, message, capsys):
    assert main(["bench", "render", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scalgui: error:") and message in err[0]


def test_a_json_path_in_a_missing_folder_is_refused_before_any_work(tmp_path, capsys):
    assert main(["bench", "render", "--json", str(tmp_path / "missing" / "out.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_cancel_at_the_first_iteration_stops_the_render_and_changes_nothing():
    from scalgui.app.document import Document
    from scalgui.dsp.edits import Band, Edit, Rectangle

    samples = signals.example_sound(SAMPLE_RATE)[:, :SAMPLE_RATE]
    doc = Document.from_samples(samples, SAMPLE_RATE, device="cpu")
    previous = np.asarray(samples, np.float32) * 0.5
    outcome = bench_render.cancel_once(
        doc, FIXED_RENDER, previous_edit=Edit(Rectangle(0.2, 0.6, 300, 3000), "gain", -6), previous_render=previous,
        edit=Edit(Band(2000, 4000), "gain", -30), stage="iterating")
    assert outcome["reached"] and outcome["error"] is None
    assert outcome["latency_s"] >= 0 and outcome["cancel_at_s"] + outcome["latency_s"] == pytest.approx(
        outcome["render_s"], abs=1e-6)
    assert outcome["iterations_reported"] >= 1
    assert outcome["edits_unchanged"] and outcome["render_unchanged"] and len(doc.edits) == 2
