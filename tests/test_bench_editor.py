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
