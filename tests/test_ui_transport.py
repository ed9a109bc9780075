"""Playback without a sound device (the silent clock), the cursor, loop, band only, A/B,
and the render's loss plot — driven with real key and mouse events."""
import time
from typing import ClassVar

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt

from scalgui.dsp.edits import Edit, Rectangle
from scalgui.ui import transport
from scalgui.ui.testing import mouse_click, mouse_drag, screen_line

# `silent_window` (tests/conftest.py): the editor on 2 s of stereo music, playing on the
# silent clock as on a machine without a sound card, whatever this one has;
# `make_window(silent=False)` plays through the system's default output.


def test_space_plays_silently_and_the_playhead_moves_at_real_speed(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    assert not view.playhead.isVisible()
    started = time.perf_counter()
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert w.player.playing and w.player.silent and w.player.audio_sink is None
    assert w.statusBar().currentMessage() == "no audio output device: playing silently"
    assert w.transport.play_action.text().endswith("Pause")
    qtbot.wait(300)
    elapsed = time.perf_counter() - started
    position = w.player.position
    assert position == pytest.approx(elapsed, abs=0.08)
    qtbot.wait(50)  # a tick of the playhead timer later, both lines show the position
    for line in (view.playhead, view.overview_playhead):
        assert line.isVisible()
        assert line.value() == pytest.approx(w.player.position, abs=0.06)
    assert 0.2 < view.playhead.value() < 0.8

    qtbot.keyClick(view, Qt.Key.Key_Space)  # pause: the playhead stays where it stopped
    paused = w.player.position
    assert not w.player.playing and view.playhead.isVisible()
    qtbot.wait(100)
    assert w.player.position == pytest.approx(paused)
    qtbot.keyClick(view, Qt.Key.Key_Space)  # resume from there
    assert w.player.playing and w.player.position == pytest.approx(paused, abs=0.03)
    w.transport.stop_action.trigger()
    assert not w.player.playing and not view.playhead.isVisible()
    assert w.transport.time_label.text() == "0:00.000"


def test_click_on_the_waveform_sets_the_cursor_and_play_starts_there(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    mouse_click(view, view.overview_widget_pos(1.5))
    sec_px = w.document.duration / view.overview_box.width()
    assert w.play_cursor == pytest.approx(1.5, abs=2 * sec_px)
    assert view.cursor_line.isVisible() and view.overview_cursor.value() == pytest.approx(w.play_cursor)
    assert view.visible_range() == pytest.approx((0.0, w.document.duration))  # visible already: no scrolling
    positions = []
    w.player.positionChanged.connect(positions.append)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    qtbot.wait(120)
    assert positions[0] == pytest.approx(w.play_cursor)
    assert all(p >= w.play_cursor for p in positions) and positions[-1] > w.play_cursor + 0.05
    # Played to the end, the player stops by itself and the playhead goes.
    mouse_click(view, view.overview_widget_pos(w.document.duration - 0.05))
    qtbot.waitUntil(lambda: not w.player.playing, timeout=2000)
    assert not view.playhead.isVisible()
    # A click with the pan tool on the scalogram places the cursor too.
    mouse_click(view, view.widget_pos(0.75, 1000.0))
    assert w.play_cursor == pytest.approx(0.75, abs=view.units_per_pixel()[0])


def test_loop_repeats_the_selection_time_range(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    w.tool_bar.set_tool("time")
    a, b = view.widget_pos(0.3, 1000.0), view.widget_pos(0.5, 1000.0)
    mouse_drag(view, [a, (a + b) / 2, b])
    t0, t1, _, _ = view.selection_bounds()
    w.set_play_cursor(0.45)
    w.transport.loop_action.setChecked(True)
    positions = []
    w.player.positionChanged.connect(positions.append)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert w.player.loop == pytest.approx((t0, t1))
    qtbot.wait(400)
    assert w.player.playing
    assert all(t0 - 1e-9 <= p < t1 for p in positions)
    assert np.any(np.diff(positions) < 0)  # it wrapped round
    # Without a selection the loop is the whole sound.
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert w.player.loop == pytest.approx((0.0, w.document.duration))


def test_band_only_needs_the_document_to_band_limit(qtbot, silent_window, monkeypatch):
    w, view = silent_window, silent_window.view
    w.tool_bar.set_tool("band")
    a, b = view.widget_pos(1.0, 500.0), view.widget_pos(1.0, 2000.0)
    mouse_drag(view, [a, (a + b) / 2, b])
    if not hasattr(w.document, "band_audio"):
        w.transport.band_action.trigger()
        assert not w.transport.band_action.isChecked()
        assert "not available yet" in w.statusBar().currentMessage()
    # With a document that can band-limit, the player plays what it returns.
    calls = []
    quiet = np.zeros_like(w.document.samples)
    monkeypatch.setattr(w.document, "band_audio", lambda f0, f1, layer: calls.append((f0, f1, layer)) or quiet,
                        raising=False)
    w.transport.band_action.trigger()
    assert w.transport.band_action.isChecked()
    qtbot.keyClick(view, Qt.Key.Key_Space)
    f0, f1, layer = calls[-1]
    assert (f0, f1) == pytest.approx(view.selection_bounds()[2:]) and layer == "source"
    assert w.player.samples is quiet


def test_ab_switch_plays_the_render_once_there_is_one_and_the_loss_plot_fills(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    doc = w.document
    assert not w.transport.b_action.isEnabled()
    w.switch_ab()  # nothing to switch to yet
    assert w.transport.a_action.isChecked() and w.player.samples is doc.samples
    w.apply_edit(Edit(Rectangle(0.3, 0.6, 1000.0, 4000.0), "gain", -30.0))

    rendering_at_update = []
    w.convergence.curve.sigPlotChanged.connect(lambda *_: rendering_at_update.append(w.rendering))
    assert w.start_render()
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    assert doc.rendered is not None and not w.errors
    # The loss plot received the render's progress, while it ran: convergence per iteration.
    x, y = w.convergence.points
    assert len(rendering_at_update) >= len(x) and all(rendering_at_update)
    assert len(x) >= 2 and x[-1] == w.last_render.iterations and np.all(np.diff(x) > 0)
    assert np.all(np.isfinite(y)) and y[-1] < 0 and w.convergence_dock.isVisible()
    assert y.min() == pytest.approx(w.last_render.spectral_convergence_db, abs=0.5)

    assert w.transport.b_action.isEnabled()
    qtbot.keyClick(view, Qt.Key.Key_Space)
    qtbot.wait(150)
    before = w.player.position
    qtbot.keyClick(view, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)  # A/B switch
    assert w.transport.b_action.isChecked()
    assert w.player.samples is doc.rendered
    assert w.player.playing and w.player.position >= before  # the switch keeps the position
    w.transport.a_action.trigger()
    assert w.player.samples is doc.samples


class _FakeSink:
    """Stands in for the QAudioSink wrapper: takes what it is given, 'plays' at a set pace."""

    instances: ClassVar[list] = []

    def __init__(self, device, channels, sample_rate):
        self.channels, self.rate = channels, sample_rate
        self.chunks, self.played_s, self.failed, self.idle = [], 0.0, False, False
        _FakeSink.instances.append(self)

    def free_frames(self):
        return 1000

    def write(self, frames):
        self.chunks.append(np.array(frames))

    def elapsed_s(self):
        return self.played_s

    def stop(self):
        pass


def test_player_feeds_a_sink_the_right_frames_looping_and_to_the_end(qtbot, monkeypatch):
    monkeypatch.setattr(transport, "_Sink", _FakeSink)
    rate = 8000.0
    samples = np.stack([np.arange(4000), -np.arange(4000)]).astype(np.float32)  # 0.5 s
    player = transport.Player()
    player.set_audio(samples, rate)
    # Loop 0.1-0.2 s from 0.15 s: frames 1200..1599 then 800..1599 again and again.
    assert player.play(0.15, loop=(0.1, 0.2), device=object())
    sink = _FakeSink.instances[-1]
    for _ in range(3):
        player._tick()
    written = np.concatenate(sink.chunks)
    assert written.shape == (4000, 2) and np.array_equal(written[:, 1], -written[:, 0])
    expected = 800 + (np.arange(4000) + 400) % 800
    assert np.array_equal(written[:, 0], expected)
    sink.played_s = 0.1  # the device played 0.1 s: 0.05 s to the loop's end, then 0.05 s from its start
    assert player.position == pytest.approx(0.15)
    assert not player.silent and player.silent_reason == ""
    # Without a loop it writes up to the end and stops when the sink has played it all.
    assert player.play(0.4, device=object())
    sink = _FakeSink.instances[-1]
    player._tick()
    written = np.concatenate(sink.chunks)
    assert np.array_equal(written[:, 0], np.arange(3200, 4000))
    sink.played_s, sink.idle = 0.1, True
    player._tick()
    assert not player.playing and player.position == pytest.approx(0.5)
    # A device that breaks mid-way: the player goes on silently from where it was.
    assert player.play(0.0, device=object())
    sink = _FakeSink.instances[-1]
    notices = []
    player.notice.connect(notices.append)
    sink.played_s, sink.failed = 0.2, True
    player._tick()
    assert player.playing and player.silent and notices == [transport.NO_DEVICE_MESSAGE]
    assert player.position == pytest.approx(0.2, abs=0.02)
    player.stop()


def test_a_device_that_cannot_open_falls_back_to_the_silent_clock(qtbot):
    from PyQt6.QtMultimedia import QAudioDevice

    player = transport.Player()
    player.set_audio(np.zeros((1, 8000), np.float32), 8000.0)
    notices = []
    player.notice.connect(notices.append)
    assert player.play(0.0, device=QAudioDevice())  # a null device takes no format
    assert player.silent and notices and notices[0].endswith("playing silently")
    player.stop()


def test_a_sound_device_plays_the_selection_and_the_playhead_follows(qtbot, make_window):
    """With a real audio output: a looped selection plays through a QAudioSink that is
    active, and the playhead moves with what the device has played. Skipped without one
    (servers, CI, this project's machines); the silent clock is tested above."""
    from PyQt6.QtMultimedia import QAudio, QMediaDevices

    if not QMediaDevices.audioOutputs():
        pytest.skip("no audio output device (QMediaDevices.audioOutputs() is empty): "
                    "playback through a real sound card cannot be tested on this machine")
    w = make_window(silent=False)
    view = w.view
    w.tool_bar.set_tool("time")
    mouse_drag(view, screen_line(view, (0.5, 1000.0), (1.0, 1000.0), 6))
    t0, t1, _, _ = view.selection_bounds()
    w.transport.loop_action.setChecked(True)  # Loop plays the selection
    positions = []
    w.player.positionChanged.connect(positions.append)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert w.player.playing and not w.player.silent, w.player.silent_reason
    sink = w.player.audio_sink
    qtbot.waitUntil(lambda: sink.state() == QAudio.State.ActiveState, timeout=3000)
    qtbot.waitUntil(lambda: positions and max(positions) > t0 + 0.15, timeout=3000)
    assert sink.state() == QAudio.State.ActiveState and sink.error() == QAudio.Error.NoError
    assert all(t0 - 1e-6 <= p < t1 for p in positions)
    assert view.playhead.isVisible() and t0 <= view.playhead.value() < t1
    assert not w.errors and w.statusBar().currentMessage() != transport.NO_DEVICE_MESSAGE
    qtbot.keyClick(view, Qt.Key.Key_Space)  # pause
    assert not w.player.playing
