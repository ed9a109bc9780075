"""Playback: a player on QtMultimedia with a silent clock when there is no sound device,
and the transport tool bar.

:class:`Player` pushes float32 (or int16) frames into a ``QAudioSink`` from a timer and
reports the position it has played. Without an output device (servers, CI, this kind of
machine) — or when the sink fails to open — it runs a silent clock instead
(``QElapsedTimer``): the playhead still moves at real speed, and the player says why it is
silent. Positions are seconds in the sound; a loop repeats ``[t0, t1)``.

The player only plays the samples it is given: which samples (the source, the render, a
band of either) is the window's choice.
"""
from __future__ import annotations

import math

import numpy as np
from PyQt6.QtCore import QElapsedTimer, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QLabel, QToolBar, QWidget

__all__ = ["NO_DEVICE_MESSAGE", "Player", "TransportBar", "default_audio_output", "format_time"]

#: What the status bar says when there is nothing to play through.
NO_DEVICE_MESSAGE = "no audio output device: playing silently"
TICK_MS = 20  # playhead updates and sink feeding
SINK_BUFFER_S = 0.12  # small, so an A/B switch is heard at once


def default_audio_output():
    """The system's default audio output (a ``QAudioDevice``), or None when there is none."""
    try:
        from PyQt6.QtMultimedia import QMediaDevices
    except ImportError:  # QtMultimedia (or libpulse) missing: play silently
        return None
    device = QMediaDevices.defaultAudioOutput()
    return None if device.isNull() else device


def format_time(t: float) -> str:
    """``m:ss.mmm``."""
    t = max(float(t), 0.0)
    minutes = int(t // 60)
    return f"{minutes}:{t - 60 * minutes:06.3f}"


class _Sink:
    """A push-mode ``QAudioSink`` for ``channels`` x ``sample_rate``; raises RuntimeError if it cannot open."""

    def __init__(self, device, channels: int, sample_rate: float) -> None:
        from PyQt6.QtMultimedia import QAudio, QAudioFormat, QAudioSink

        fmt = QAudioFormat()
        fmt.setSampleRate(round(sample_rate))
        fmt.setChannelCount(channels)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Float)
        if not device.isFormatSupported(fmt):
            fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
            if not device.isFormatSupported(fmt):
                raise RuntimeError(f"the audio output does not take {sample_rate:g} Hz, {channels} channel(s)")
        self.float32 = fmt.sampleFormat() == QAudioFormat.SampleFormat.Float
        self.frame_bytes = channels * (4 if self.float32 else 2)
        self.channels = channels
        self.sink = QAudioSink(device, fmt)
        self.sink.setBufferSize(int(SINK_BUFFER_S * sample_rate) * self.frame_bytes)
        self.io = self.sink.start()
        if self.io is None or self.sink.error() != QAudio.Error.NoError:
            self.sink.stop()
            raise RuntimeError(f"the audio output did not open ({self.sink.error().name})")
        self._fatal = (QAudio.Error.OpenError, QAudio.Error.IOError, QAudio.Error.FatalError)
        self._idle = QAudio.State.IdleState

    @property
    def failed(self) -> bool:
        """Whether the output broke (an underrun at the end of the sound is no failure)."""
        return self.sink.error() in self._fatal

    @property
    def idle(self) -> bool:
        """Whether the sink has played everything written to it."""
        return self.sink.state() == self._idle

    def free_frames(self) -> int:
        return max(self.sink.bytesFree(), 0) // self.frame_bytes

    def write(self, frames: np.ndarray) -> None:
        """Write interleaved ``frames`` [n, channels] float32."""
        if self.float32:
            data = np.ascontiguousarray(frames, dtype=np.float32).tobytes()
        else:
            data = (np.clip(frames, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self.io.write(data)

    def elapsed_s(self) -> float:
        return self.sink.processedUSecs() / 1e6

    def stop(self) -> None:
        self.sink.stop()


class Player(QObject):
    """Plays ``[channels, frames]`` float32 samples from a position, optionally looping.

    Signals
    -------
    positionChanged(float)
        The playing position, seconds (about every 20 ms while playing).
    stateChanged(str)
        ``"playing"`` or ``"stopped"``.
    notice(str)
        Something for the status bar (e.g. :data:`NO_DEVICE_MESSAGE`).
    """

    positionChanged = pyqtSignal(float)
    stateChanged = pyqtSignal(str)
    notice = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._samples: np.ndarray | None = None
        self._rate = 44100.0
        self._playing = False
        self._start = 0.0
        self._loop: tuple[float, float] | None = None
        self._clock = QElapsedTimer()
        self._sink: _Sink | None = None
        self._written = 0  # frames pushed to the sink since play()
        self._position = 0.0
        self.silent_reason = ""
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ state
    @property
    def samples(self) -> np.ndarray | None:
        return self._samples

    @property
    def sample_rate(self) -> float:
        return self._rate

    @property
    def duration(self) -> float:
        return 0.0 if self._samples is None else self._samples.shape[1] / self._rate

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def silent(self) -> bool:
        """Whether the current (or last) playback ran on the silent clock."""
        return self._playing and self._sink is None

    @property
    def audio_sink(self):
        """The ``QAudioSink`` being fed, or ``None`` on the silent clock or when stopped."""
        return None if self._sink is None else self._sink.sink

    @property
    def loop(self) -> tuple[float, float] | None:
        return self._loop

    @property
    def position(self) -> float:
        """Seconds: where playing is now (or stopped)."""
        if self._playing:
            self._position = self._position_at(self._elapsed())
        return self._position

    def set_audio(self, samples: np.ndarray | None, sample_rate: float | None = None) -> None:
        """Play ``samples`` [channels, frames] from now on; a playback in progress continues
        at the same position with the new samples (an A/B switch)."""
        if samples is not None:
            samples = np.asarray(samples, dtype=np.float32)
            if samples.ndim == 1:
                samples = samples[None, :]
        channels_before = None if self._samples is None else self._samples.shape[0]
        self._samples = samples
        if sample_rate is not None:
            self._rate = float(sample_rate)
        if samples is None:
            self.stop()
        elif self._playing and self._sink is not None and min(samples.shape[0], 2) != channels_before:
            self.play(self.position, self._loop)  # reopen the sink for the channel count

    # ------------------------------------------------------------------ control
    def play(self, start_s: float, loop: tuple[float, float] | None = None, *, device="default") -> bool:
        """Play from ``start_s`` seconds (looping over ``loop``, if given); False with nothing to play.

        ``device``: a ``QAudioDevice``, ``None`` for the silent clock, or ``"default"``.
        """
        self._close_sink()
        if self._samples is None or self._samples.shape[1] == 0:
            return False
        duration = self.duration
        if loop is not None:
            a, b = max(loop[0], 0.0), min(loop[1], duration)
            loop = (a, b) if b - a >= 2.0 / self._rate else None
        start = min(max(float(start_s), 0.0), duration)
        if loop is not None and not loop[0] <= start < loop[1]:
            start = loop[0]
        if loop is None and start >= duration:
            start = 0.0
        self._start, self._loop, self._written = start, loop, 0
        if device == "default":
            device = default_audio_output()
        self.silent_reason = ""
        if device is None:
            self.silent_reason = NO_DEVICE_MESSAGE
        else:
            try:
                self._sink = _Sink(device, min(self._samples.shape[0], 2), self._rate)
            except (RuntimeError, ImportError) as exc:
                self._sink = None
                self.silent_reason = f"{exc}: playing silently"
        self._clock.start()
        self._playing = True
        self._position = start
        if self._sink is not None:
            self._feed()
        self._timer.start()
        if self.silent_reason:
            self.notice.emit(self.silent_reason)
        self.stateChanged.emit("playing")
        self.positionChanged.emit(start)
        return True

    def stop(self) -> float:
        """Stop; returns the position playing reached."""
        position = self.position
        was_playing = self._playing
        self._playing = False
        self._timer.stop()
        self._close_sink()
        self._position = position
        if was_playing:
            self.stateChanged.emit("stopped")
        return position

    def _close_sink(self) -> None:
        if self._sink is not None:
            self._sink.stop()
            self._sink = None

    # ------------------------------------------------------------------ clock
    def _elapsed(self) -> float:
        if self._sink is not None:
            return self._sink.elapsed_s()
        return self._clock.nsecsElapsed() / 1e9

    def _position_at(self, elapsed: float) -> float:
        if self._loop is not None:
            a, b = self._loop
            return a + math.fmod(self._start - a + elapsed, b - a)
        return min(self._start + elapsed, self.duration)

    def _source_frames(self, first: int, count: int) -> np.ndarray:
        """Source frame indices of stream frames ``first .. first + count``."""
        rate = self._rate
        i = np.arange(first, first + count, dtype=np.int64) + round(self._start * rate)
        if self._loop is not None:
            a, b = (round(x * rate) for x in self._loop)
            i = a + (i - a) % max(b - a, 1)
        return i

    def _feed(self) -> None:
        sink, samples = self._sink, self._samples
        free = sink.free_frames()
        if self._loop is None:
            free = min(free, samples.shape[1] - round(self._start * self._rate) - self._written)
        if free <= 0:
            return
        index = self._source_frames(self._written, free)
        sink.write(samples[: sink.channels, index].T)
        self._written += free

    def _tick(self) -> None:
        if not self._playing:
            return
        if self._sink is not None:
            if self._sink.failed:
                # The device went away (or never really opened): go on silently from here.
                position = self.position
                self._close_sink()
                self._start, self._written = position, 0
                self._clock.start()
                self.silent_reason = NO_DEVICE_MESSAGE
                self.notice.emit(self.silent_reason)
            else:
                self._feed()
        position = self.position
        self.positionChanged.emit(position)
        if self._loop is None:
            written_all = self._sink is not None and (
                round(self._start * self._rate) + self._written >= self._samples.shape[1])
            if position >= self.duration - 1.0 / self._rate or (written_all and self._sink.idle):
                self.stop()


_PLAY_TEXT, _PAUSE_TEXT = "▶ Play", "❚❚ Pause"


class TransportBar(QToolBar):
    """Play/pause (Space), stop, loop, band only, the A/B switch and the time.

    The window connects the actions; the bar only shows state.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Transport", parent)
        self.setObjectName("transport")
        self.play_action = QAction(_PLAY_TEXT, self)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.setToolTip("Play from the cursor, or pause (Space)")
        self.stop_action = QAction("■ Stop", self)
        self.stop_action.setToolTip("Stop and go back to the cursor")
        self.loop_action = QAction("Loop", self, checkable=True)
        self.loop_action.setToolTip("Loop the selection's time range (the whole sound without a selection)")
        self.band_action = QAction("Band only", self, checkable=True)
        self.band_action.setToolTip("Play only the selection's frequency band")
        self.a_action = QAction("A Original", self, checkable=True)
        self.a_action.setToolTip("Play the original sound (A)")
        self.b_action = QAction("B Render", self, checkable=True)
        self.b_action.setToolTip("Play the last render (B); Ctrl+B switches")
        self.ab_group = QActionGroup(self)
        self.ab_group.setExclusive(True)
        for action in (self.a_action, self.b_action):
            self.ab_group.addAction(action)
        self.a_action.setChecked(True)
        self.b_action.setEnabled(False)
        self.time_label = QLabel(format_time(0.0))
        self.time_label.setContentsMargins(8, 0, 4, 0)
        self.time_label.setMinimumWidth(80)
        for action in (self.play_action, self.stop_action):
            self.addAction(action)
        self.addSeparator()
        self.addAction(self.loop_action)
        self.addAction(self.band_action)
        self.addSeparator()
        self.addAction(self.a_action)
        self.addAction(self.b_action)
        self.addWidget(self.time_label)

    def set_playing(self, playing: bool) -> None:
        self.play_action.setText(_PAUSE_TEXT if playing else _PLAY_TEXT)

    def set_time(self, t: float) -> None:
        self.time_label.setText(format_time(t))
