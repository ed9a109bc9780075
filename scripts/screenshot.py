"""Take the README's screenshot of the editor: open the example, edit it with the real tools,
render, and save the window to resources/screenshot.png.

    python scripts/screenshot.py                        # offscreen (no display needed)
    xvfb-run -a python scripts/screenshot.py --platform xcb   # under a virtual X server
    python scripts/screenshot.py --out /tmp/shot.png --size 1400x900

The edits go through the same mouse events a person makes (rectangle drag, brush drags),
so the picture shows what the tools do: the noise burst turned down 30 dB, a partial
brushed away, and a new rising partial painted in.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _wait(app, condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshot: timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "screenshot.png")
    parser.add_argument("--size", default="1400x900", help="window size WxH (default 1400x900)")
    parser.add_argument("--platform", default=None, help="Qt platform (default: offscreen unless QT_QPA_PLATFORM is set)")
    parser.add_argument("--no-render", action="store_true", help="skip the render (faster)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    os.environ["QT_QPA_PLATFORM"] = args.platform or os.environ.get("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))

    import scalgui  # noqa: F401  (OMP_WAIT_POLICY before torch)
    from scalgui.ui.app import create_application

    app = create_application()
    import pyqtgraph as pg
    from PyQt6.QtCore import QSettings

    from scalgui.resources import example_path
    from scalgui.ui.main_window import MainWindow
    from scalgui.ui.testing import mouse_drag, mouse_move, wait_for_picture

    pg.setConfigOptions(mouseRateLimit=-1)  # deliver every synthetic mouse move

    class _Bot:  # the little of pytest-qt's qtbot that wait_for_picture needs
        @staticmethod
        def waitUntil(check, timeout=10000):
            def ok():
                try:
                    check()
                    return True
                except AssertionError:
                    return False

            _wait(app, ok, timeout / 1000, "the picture")

    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    window = MainWindow(QSettings(str(settings_file), QSettings.Format.IniFormat))
    window.resize(width, height)
    window.show()
    window.open_file(example_path())
    _wait(app, lambda: window.document is not None, 60, "the example to open")
    view = window.view
    wait_for_picture(_Bot, view)
    window.display_bar.opacity.setValue(28)

    def line(points, steps=40):
        """Viewport points along a path through (t, Hz) points, straight on screen between them."""
        out = []
        for (t0, f0), (t1, f1) in itertools.pairwise(points):
            a, b = view.widget_pos(t0, f0), view.widget_pos(t1, f1)
            out += [a + (b - a) * (i / steps) for i in range(steps)]
        out.append(view.widget_pos(*points[-1]))
        return out

    bar = window.tool_bar
    # 1. The noise burst (4.6-5.4 s, 2-10 kHz) down by 30 dB with a rectangle.
    bar.set_tool("rectangle")
    bar.set_mode("attenuate")
    bar.gain.setValue(30)
    bar.feather.setValue(6)
    mouse_drag(view, [view.widget_pos(4.55, 11500.0), view.widget_pos(5.0, 5000.0), view.widget_pos(5.45, 1700.0)])
    # 2. The bass note's second partial (130.8 Hz) brushed away, 30 dB down.
    bar.set_tool("brush")
    bar.radius.setValue(9)
    bar.hardness.setValue(0.5)
    mouse_drag(view, line([(0.25, 130.8), (2.7, 130.8)], steps=60))
    # 3. A new partial painted in: rising from 2.6 s to 4.4 s with a little vibrato.
    bar.set_mode("paint")
    bar.paint.setValue(-24)
    bar.radius.setValue(10)
    bar.hardness.setValue(0.3)
    path = [(2.6 + 1.8 * i / 60, 2400.0 * 2 ** (1.1 * i / 60 + 0.04 * math.sin(i / 3.0))) for i in range(61)]
    mouse_drag(view, line(path, steps=4))
    print(f"edits: {len(window.document.edits)}")

    if not args.no_render:
        window.start_render()
        _wait(app, lambda: not window.rendering, 600, "the render")
        print(f"render: {window.statusBar().currentMessage()}")
    wait_for_picture(_Bot, view)
    mouse_move(view, view.widget_pos(3.55, 3300.0))  # the read-out and the brush ring
    app.processEvents()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(args.out)):
        raise SystemExit(f"screenshot: could not write {args.out}")
    print(f"wrote {args.out} ({width}x{height})")
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
