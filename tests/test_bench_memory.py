"""``scalgui bench memory`` on a short file: every step runs and is reported."""
import re

from scalgui.cli import main


def test_bench_memory_reports_every_step_with_its_peak(tmp_path, capsys):
    assert main(["bench", "memory", "--minutes", "0.1", "--folder", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for step in ("write 0.1 min stereo WAV", "open (decode + analyse)", "local edit", "render", "export"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {step}"))
        seconds, peak, after = (float(v) for v in re.findall(r"\| ([0-9.]+) +", row)[:3])
        assert seconds >= 0 and 0 < after <= peak + 0.01 and peak < 8
    assert re.search(r"Peak over all steps: [0-9.]+ GiB", out)
    assert list(tmp_path.iterdir()) == []  # the generated files are removed
