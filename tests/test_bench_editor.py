"""``scalgui bench editor`` on a tiny sound: it finishes and prints its table."""
import pytest

pytest.importorskip("PyQt6")

from scalgui.cli import main


def test_bench_editor_tiny_run_prints_the_table(capsys):
    assert main(["bench", "editor", "--seconds", "5", "--pan-steps", "4", "--zoom-steps", "2", "--edits", "2"]) == 0
    out = capsys.readouterr().out
    assert "| measurement" in out
    for row in ("first picture (from_samples + window)", "redraw: pan, zoomed in (4 steps)",
                "redraw: zoom, zoomed in (2 steps)", "redraw: pan, zoomed out (4 steps)",
                "redraw: zoom, zoomed out (2 steps)", "overview refresh after a local edit (2x)",
                "overview refresh after undo (2x)", "overview refresh after redo (2x)"):
        assert row in out
    assert "PASS" in out or "MISS" in out


def test_bench_editor_launch_times_the_real_program_from_its_launch(capsys):
    assert main(["bench", "editor", "--launch", "--seconds", "3", "--runs", "1", "--project"]) == 0
    out = capsys.readouterr().out
    assert "QT_QPA_PLATFORM=offscreen" in out and "Load average" in out
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in out.splitlines()
            if line.startswith(("| sound:", "| project:"))}
    for row in ("sound: window shown", "sound: sound set on the window", "sound: first picture on screen",
                "project: first picture on screen", "project: picture of the edited sound"):
        assert row in rows, out
    seconds = {name: float(cells[0]) for name, cells in rows.items()}
    assert 0 < seconds["sound: window shown"] and seconds["sound: sound set on the window"] <= \
        seconds["sound: first picture on screen"] < 120
    assert seconds["project: first picture on screen"] <= seconds["project: picture of the edited sound"]
    assert rows["sound: first picture on screen"][3].strip() in ("PASS", "MISS")
