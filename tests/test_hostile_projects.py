"""Hostile projects and ``scalgui render`` (issue 20, part B).

A ``.scalproj`` file may come from anyone: every case here is a project (or a path given
to ``render``) built to fill memory, hang, crash with a traceback, or write where it
should not. Each must end in one line ``scalgui: error: ...`` naming the file and the
problem (exit code 2), in bounded memory and at once, with nothing written.

Cases that could fill memory or hang if a check regressed run in a child process
(:func:`hostile.run_scalgui`: address space capped, killed after a timeout, peak memory
measured); the rest run in-process. Every hostile file is built here, on the fly: the zip
bombs as raw deflate streams of a repeated block (never the inflated data in memory).
"""
import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest

from hostile import assert_refused, run_scalgui, snapshot
from scalgui.app.document import Document
from scalgui.app.project import ProjectError, open_project, read_project
from scalgui.audio import save_audio
from scalgui.cli import main
from scalgui.dsp import signals
from scalgui.dsp.edits import Edit, TimeRange
from scalgui.dsp.frame import FrameSettings
from scalgui.dsp.phase import MAX_ITERATIONS, RetrievalSettings
from scalgui.plugins import PluginEdit, PluginError
from scalgui.safe_json import loads_bounded

SR = 16000
#: Seconds before a child is taken as hung: start-up (torch) is a few seconds; a refusal
#: adds nothing measurable. Far above both, so a slow machine never fails a case.
HANG_S = 90
HAS_DEVICES = os.path.exists("/dev/zero") and os.path.exists("/dev/urandom") and hasattr(os, "mkfifo")
needs_devices = pytest.mark.skipif(not HAS_DEVICES, reason="needs /dev/zero, /dev/urandom and FIFOs")


# --------------------------------------------------------------------------- building projects


@pytest.fixture
def take(tmp_path):
    """A half-second mono sound beside the projects."""
    path = tmp_path / "take.wav"
    save_audio(path, signals.example_sound(SR)[:1, : SR // 2].copy() * 0.5, SR, bit_depth=24)
    return path


def _document(take) -> Document:
    doc = Document.open(take, settings=FrameSettings(SR, 12, fmin=60.0), device="cpu")
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=2)
    return doc


@pytest.fixture
def project(take, tmp_path):
    """A good project on ``take`` with one edit."""
    doc = _document(take)
    doc.push(Edit(TimeRange(0.1, 0.2), "erase"))
    return doc.save_project(tmp_path / "good.scalproj")


def _manifest(project_path) -> dict:
    with zipfile.ZipFile(project_path) as archive:
        return json.loads(archive.read("project.json"))


def _write_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``{name: bytes or str}``, written by zipfile."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _with_manifest(path, manifest, **members):
    """A project of ``manifest`` (a dict, or JSON text) and extra members."""
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return _write_zip(path, {"project.json": text, **members})


def _embedded_manifest(project_path, channels, frames) -> dict:
    """``project_path``'s manifest, its source embedded as source.npy of that shape."""
    manifest = _manifest(project_path)
    manifest["source"].update(path=None, relative=None, sha256=None, channels=channels, frames=frames,
                              embedded="source.npy")
    manifest["edits"] = []
    return manifest


def _npy_header(shape, dtype="<f4") -> bytes:
    """The ``.npy`` header of an array of that shape and type (no data)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _raw_zip(path, members):
    """A zip written byte by byte, so that it can say what zipfile never writes.

    ``members``: dicts with ``name``, ``chunks`` (the stored bytes, an iterable),
    ``method``, ``crc``, ``stored`` (compressed size), ``size`` (uncompressed size) and
    optionally ``flags``. Sizes of 4 GiB and more get a zip64 extra field.
    """
    central = []
    with open(path, "wb") as out:
        for m in members:
            offset = out.tell()
            name = m["name"].encode()
            flags = m.get("flags", 0)
            zip64 = m["size"] >= 0xFFFFFFFF or m["stored"] >= 0xFFFFFFFF
            extra = struct.pack("<HHQQ", 1, 16, m["size"], m["stored"]) if zip64 else b""
            sizes = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (m["stored"], m["size"])
            version = 45 if zip64 else 20
            out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", version, flags, m["method"], 0, 0x21, m["crc"],
                                  *sizes, len(name), len(extra)) + name + extra)
            for chunk in m["chunks"]:
                out.write(chunk)
            central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", version, version, flags, m["method"],
                                       0, 0x21, m["crc"], *sizes, len(name), len(extra), 0, 0, 0, 0, offset)
                           + name + extra)
        start = out.tell()
        directory = b"".join(central)
        out.write(directory)
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory),
                              start, 0))
    return path


def _stored(name, data, **extra):
    return {"name": name, "chunks": [data], "method": zipfile.ZIP_STORED, "crc": zlib.crc32(data),
            "stored": len(data), "size": len(data), **extra}


def _deflate_bomb(name, head: bytes, block: bytes, repeats: int) -> dict:
    """A member inflating to ``head + block * repeats``: ``block`` is deflated once (a full
    flush makes it independent of what came before) and its compressed form repeated."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    head_z = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
    again = zlib.compressobj(9, zlib.DEFLATED, -15)
    block_z = again.compress(block) + again.flush(zlib.Z_FULL_FLUSH)
    tail_z = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    crc = zlib.crc32(head)
    for _ in range(repeats):
        crc = zlib.crc32(block, crc)
    return {"name": name, "chunks": [head_z, *([block_z] * repeats), tail_z], "method": zipfile.ZIP_DEFLATED,
            "crc": crc, "stored": len(head_z) + len(block_z) * repeats + len(tail_z),
            "size": len(head) + len(block) * repeats}


def _refused(outcome, *needles):
    """:func:`hostile.assert_refused`, reporting the child's time and peak memory (``-s``)."""
    print(f"{outcome.stderr_lines[-1] if outcome.stderr_lines else outcome.code}: {outcome.seconds:.1f} s, "
          f"peak {outcome.peak_mb:.0f} MB")
    assert_refused(outcome, *needles)


def _render(args, capsys):
    """``scalgui render ARGS`` in-process: (exit code, stdout, stderr lines)."""
    code = main(["render", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def _assert_one_line(code, err, *needles):
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("scalgui: error: "), err
    assert "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], (needle, err[0])


# --------------------------------------------------------------------------- safe_json


@pytest.mark.parametrize("text, words", [
    ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
    ('{"t1": 1e400}', "1e400 is out of range"),
    ('{"t1": -1e400}', "-1e400 is out of range"),
    ('[NaN]', "NaN is not a JSON number"),
    ('[Infinity]', "Infinity is not a JSON number"),
    ('{"a": 1, "a": 2}', "'a' appears twice"),
    ("1" * 5000, "a number of 5000 characters"),
    (b"\xff\xfe{}", "not UTF-8"),
    ('{"a": [1, 2,]}', "not valid JSON"),
], ids=["deep", "1e400", "-1e400", "NaN", "Infinity", "duplicate key", "long number", "not UTF-8", "syntax"])
def test_bounded_json_refuses_with_one_line(text, words):
    with pytest.raises(ValueError) as caught:
        loads_bounded(text)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_bounded_json_reads_what_strict_json_writes():
    data = {"a": [1, -2.5, 3e-300, None, True, "x[{\\\"]"], "b": {"c": [[[]]]}}
    assert loads_bounded(json.dumps(data)) == data
    assert loads_bounded(json.dumps(data).encode("utf-8-sig")) == data
    # Brackets inside strings are not nesting.
    assert loads_bounded(json.dumps(["[" * 1000])) == ["[" * 1000]
    assert loads_bounded("[" * 64 + "]" * 64, max_depth=64)
    with pytest.raises(ValueError, match="65 levels"):
        loads_bounded("[" * 65 + "]" * 65, max_depth=64)
    with pytest.raises(ValueError, match="more than the 10 accepted"):
        loads_bounded(" " * 11, max_bytes=10)


# --------------------------------------------------------------------------- memory and hangs (child processes)


def test_a_manifest_inflating_to_1_5_gb_is_refused_before_inflating(project, tmp_path):
    bomb = _raw_zip(tmp_path / "bomb.scalproj",
                    [_deflate_bomb("project.json", b"", b" " * 2**24, 96)])  # 1.5 GiB of spaces
    assert bomb.stat().st_size < 2 * 2**20
    outcome = run_scalgui(["render", bomb, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "bomb.scalproj", "project.json is 1.5 GiB uncompressed", "at most 8.0 MiB")
    assert not (tmp_path / "o.wav").exists()


def test_a_source_array_inflating_to_4_gb_is_refused_before_inflating(project, tmp_path):
    block = bytes(2**24)
    repeats = 240  # 4.0e9 bytes of samples: 1 channel of 1.0e9 frames
    frames = repeats * len(block) // 4
    manifest = _embedded_manifest(project, 1, frames)
    bomb = _raw_zip(tmp_path / "bomb.scalproj", [
        _stored("project.json", json.dumps(manifest).encode()),
        _deflate_bomb("source.npy", _npy_header((1, frames)), block, repeats),
    ])
    assert bomb.stat().st_size < 5 * 2**20
    outcome = run_scalgui(["render", bomb, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "bomb.scalproj", "source.npy is 3.8 GiB uncompressed", "at most 2.0 GiB")


def test_5000_channels_are_refused_in_the_manifest_and_in_the_array(project, tmp_path):
    samples = np.zeros((5000, 10), dtype=np.float32)  # 200 KB that an analysis would take 13 GB for
    array = _npy_header(samples.shape) + samples.tobytes()
    said = _with_manifest(tmp_path / "said.scalproj", _embedded_manifest(project, 5000, 10), **{"source.npy": array})
    outcome = run_scalgui(["render", said, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "said.scalproj", "source.channels must lie in 1..64, got 5000")
    # The manifest says one channel; the array's header says otherwise.
    hidden = _with_manifest(tmp_path / "hidden.scalproj", _embedded_manifest(project, 1, 10),
                            **{"source.npy": array})
    outcome = run_scalgui(["render", hidden, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "hidden.scalproj", "source.npy has 5000 channels; scalgui handles 1 to 64")
    assert not (tmp_path / "o.wav").exists()


def test_an_npy_header_claiming_745_gib_is_refused_without_reading(project, tmp_path):
    shape = (64, 3_125_000_000)  # 8.0e11 bytes of float32
    array = _npy_header(shape) + bytes(4096)
    bad = _with_manifest(tmp_path / "claims.scalproj", _embedded_manifest(project, *shape), **{"source.npy": array})
    outcome = run_scalgui(["render", bad, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "claims.scalproj", "header claims 745.1 GiB of samples but the archive holds 4.0 KiB")


@needs_devices
@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "fifo"])
def test_a_device_or_fifo_as_the_project_is_refused_at_once(kind, tmp_path):
    if kind == "fifo":
        os.mkfifo(tmp_path / "p.scalproj")  # nothing ever writes to it
        path, words = tmp_path / "p.scalproj", "is a FIFO (named pipe), not a regular file"
    else:
        path, words = kind, "is a character device, not a regular file"
    before = snapshot(tmp_path)
    outcome = run_scalgui(["render", path, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, f"project '{path}'", words)
    assert snapshot(tmp_path) == before


@needs_devices
@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "fifo"])
@pytest.mark.parametrize("verify", [True, False], ids=["checksum", "no-verify"])
def test_a_device_or_fifo_as_the_source_is_refused_before_its_checksum(kind, verify, project, tmp_path):
    if kind == "fifo":
        os.mkfifo(tmp_path / "source.wav")
        source, words = tmp_path / "source.wav", "is a FIFO (named pipe), not a regular file"
    else:
        source, words = kind, "is a character device, not a regular file"
    outcome = run_scalgui(["render", project, "--source", source, "-o", tmp_path / "o.wav",
                           *([] if verify else ["--no-verify"])], timeout=HANG_S)
    _refused(outcome, "good.scalproj", f"source '{source}' {words}")
    assert not (tmp_path / "o.wav").exists()


@needs_devices
def test_recorded_source_paths_naming_a_fifo_or_a_device_are_skipped_not_read(project, tmp_path):
    os.mkfifo(tmp_path / "fifo.wav")
    manifest = _manifest(project)
    manifest["source"].update(path=str(tmp_path / "fifo.wav"), relative="/dev/zero")
    moved = _with_manifest(tmp_path / "moved.scalproj", manifest)
    outcome = run_scalgui(["render", moved, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "moved.scalproj", "was moved or deleted", "--source")


@needs_devices
def test_a_fifo_named_like_audio_in_a_batch_folder_is_skipped(project, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    save_audio(folder / "a.wav", signals.example_sound(SR)[:1, : SR // 4].copy() * 0.5, SR)
    os.mkfifo(folder / "b.wav")
    outcome = run_scalgui(["render", project, "--batch", folder, "-o", tmp_path / "out"], timeout=HANG_S)
    assert not outcome.timed_out and outcome.code == 0, outcome
    assert "rendered 1 of 1" in outcome.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav"]


def test_iterations_1e12_are_refused_instead_of_running_for_ever(project, tmp_path):
    manifest = _manifest(project)
    manifest["render"]["retrieval"]["iterations"] = 1e12
    forever = _with_manifest(tmp_path / "forever.scalproj", manifest)
    outcome = run_scalgui(["render", forever, "-o", tmp_path / "o.wav"], timeout=HANG_S)
    _refused(outcome, "forever.scalproj", "render.retrieval", f"iterations must lie in 0..{MAX_ITERATIONS}")


# --------------------------------------------------------------------------- the manifest (in-process)


def _set(manifest, dotted, value):
    *parents, last = dotted.split(".")
    target = manifest
    for key in parents:
        target = target[key] if not key.isdigit() else target[int(key)]
    target[last] = value


@pytest.mark.parametrize("field, value, words", [
    ("source.embedded", 5, "source.embedded must be null, 'source.npy' or 'source.flac', got 5"),
    ("source.embedded", "../../etc/passwd", "source.embedded must be null"),
    ("source.sha256", 12345, "source.sha256 must be 64 lower-case hex digits or null, got '12345'"),
    ("source.relative", 5, "source.relative must be text or null, got 5"),
    ("source.path", ["a"], "source.path must be text or null"),
    ("source.path", "a\u0000b", "source.path is not a path"),
    ("source.sample_rate", 1e12, "source.sample_rate must be a number of Hz in 1000..768000, got 1000000000000.0"),
    ("source.sample_rate", True, "source.sample_rate must be a number of Hz"),
    ("source.channels", 0, "source.channels must lie in 1..64, got 0"),
    ("source.channels", "2", "source.channels must be a whole number, got '2'"),
    ("source.frames", -1, "source.frames must lie in 1.."),
    ("render.export.clip", "explode", "render.export.clip must be one of error, normalize, limit, allow"),
    ("render.export.bit_depth", 7, "render.export.bit_depth must be null or one of 16, 24, 32, got 7"),
    ("render.export.quality", "x" * 1000, "render.export.quality must be null, a short text or a whole number"),
    ("render.retrieval.iterations", True, "iterations must be a whole number, got True"),
    ("render.retrieval.iterations", 2.5, "iterations must be a whole number, got 2.5"),
    ("render.retrieval.momentum", {"float": "nan"}, "momentum must be a finite number, got nan"),
    ("render.retrieval.learning_rate", 1e300, "learning rate must lie in (0, 1000]"),
    ("render.retrieval.power", 1e300, "power must lie in (0, 4]"),
    ("render.retrieval.seed", -1, "seed must lie in 0.."),
    ("render.retrieval.method", ["fgla"], "unknown method ('fgla',)"),
    ("state.pending", 5, "state.pending must be a list of [start, end] seconds"),
    ("state.pending", [[0, "x"]], "state.pending must be a list of [start, end] seconds"),
    ("state.render", "source.npy", "state.render must be null or 'render.npy'"),
    ("edits.0.shape.t1", "late", "edits[0].shape: TimeRange.t1 must be a number"),
    ("version", "1", "unknown project format version '1'"),
])
def test_wrong_types_and_numbers_in_the_manifest_give_one_line(field, value, words, project, tmp_path, capsys):
    manifest = _manifest(project)
    _set(manifest, field, value)
    bad = _with_manifest(tmp_path / "bad.scalproj", manifest)
    with pytest.raises(ProjectError) as caught:
        read_project(bad)
    assert words in str(caught.value) and "bad.scalproj" in str(caught.value) and "\n" not in str(caught.value)
    code, _, err = _render([bad, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "bad.scalproj", words)
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("field, value, words", [
    ("analysis.sample_rate", 1e12, "sample rate must lie in 1000..768000 Hz"),
    ("analysis.fmin", 1e-9, "fmin"),
    ("analysis.tolerance", 1e-300, "tolerance"),
])
def test_frame_settings_out_of_range_give_one_line_naming_the_field(field, value, words, project, tmp_path, capsys):
    manifest = _manifest(project)
    _set(manifest, field, value)
    bad = _with_manifest(tmp_path / "bad.scalproj", manifest)
    code, _, err = _render([bad, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "bad.scalproj", "analysis: FrameSettings:", words)


def test_deep_nesting_and_numbers_beyond_float_range_in_the_manifest(project, tmp_path, capsys):
    text = json.dumps(_manifest(project))
    deep = text.replace('"edits": [', '"edits": [' + "[" * 50_000 + "]" * 50_000 + ",", 1)
    code, _, err = _render([_with_manifest(tmp_path / "deep.scalproj", deep), "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "deep.scalproj", "project.json: JSON nested 50002 levels deep")
    huge = text.replace('"t1": 0.2', '"t1": 1e400', 1)
    assert huge != text
    code, _, err = _render([_with_manifest(tmp_path / "huge.scalproj", huge), "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "huge.scalproj", "number 1e400 is out of range")


# --------------------------------------------------------------------------- the archive (in-process)


def test_encrypted_members_and_other_compressions_are_refused(project, tmp_path, capsys):
    text = json.dumps(_manifest(project)).encode()
    cases = {
        "encrypted": (_raw_zip(tmp_path / "encrypted.scalproj", [_stored("project.json", text, flags=0x1)]),
                      "project.json is encrypted"),
        "method 99": (_raw_zip(tmp_path / "aes.scalproj", [_stored("project.json", text, method=99)]),
                      "project.json uses compression method 99; scalgui reads stored and deflated members only"),
        "bzip2": (_write_zip(tmp_path / "bzip2.scalproj", {"project.json": text}, zipfile.ZIP_BZIP2),
                  "uses compression method 12"),
    }
    for path, words in cases.values():
        code, _, err = _render([path, "-o", tmp_path / "o.wav"], capsys)
        _assert_one_line(code, err, path.name, words)


def test_duplicate_too_many_and_out_of_file_members_are_refused(project, tmp_path, capsys):
    text = json.dumps(_manifest(project)).encode()
    twice = _raw_zip(tmp_path / "twice.scalproj", [_stored("project.json", text), _stored("project.json", b"{}")])
    many = _raw_zip(tmp_path / "many.scalproj", [_stored("project.json", text)]
                    + [_stored(f"x{i}", b"") for i in range(100)])
    beyond = _stored("project.json", text)
    beyond["stored"] = beyond["size"] = 2**32 + 5  # claims 4 GiB stored in a file of 2 KB
    outside = _raw_zip(tmp_path / "outside.scalproj", [beyond])
    for path, words in [(twice, "holds 'project.json' more than once"),
                        (many, "the archive lists 101 files; a project holds at most 64"),
                        (outside, "project.json claims 4.0 GiB, more than the file holds")]:
        code, _, err = _render([path, "-o", tmp_path / "o.wav"], capsys)
        _assert_one_line(code, err, path.name, words)


def test_members_inflating_beyond_their_recorded_size_or_at_bomb_ratios_are_refused(project, tmp_path, capsys):
    # 64 MiB of spaces recorded as 1,000 bytes: reading stops at 1,000 and the checksum fails.
    liar = _deflate_bomb("project.json", b"", b" " * 2**20, 64)
    liar["size"] = 1000
    path = _raw_zip(tmp_path / "liar.scalproj", [liar])
    code, _, err = _render([path, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "liar.scalproj", "damaged")
    # 4 MiB (under the manifest's limit) at deflate's highest ratio: no project does that.
    dense = _raw_zip(tmp_path / "dense.scalproj", [_deflate_bomb("project.json", b"", b" " * 2**20, 4)])
    code, _, err = _render([dense, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "dense.scalproj", "project.json inflates", "at most 500 times")


@pytest.mark.parametrize("case, words", [
    ("npz", "source.npy is a zip archive (an .npz?), not a .npy array"),
    ("0 channels", "source.npy has 0 channels"),
    ("float64", "source.npy is not float32 [channels, frames] audio"),
    ("object", "source.npy is not float32"),
    ("3-d", "source.npy is not float32 [channels, frames] audio"),
    ("shape", "source.npy is [1, 10] but the project's source is [1, 20]"),
    ("short", "header claims 80 bytes of samples but the archive holds 40 bytes"),
    ("header 4 GiB", "not a valid array (a header of 4294967295 bytes)"),
    ("version 9", ".npy format version 9 is not read"),
    ("nan", "source.npy is not finite"),
])
def test_bad_embedded_arrays_are_refused_from_their_header(case, words, project, tmp_path, capsys):
    frames = 20 if case == "shape" else 10
    manifest = _embedded_manifest(project, 1, frames)
    good = np.full((1, 10), 0.1, dtype=np.float32)
    if case == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, source=good)
        array = buffer.getvalue()
    elif case == "0 channels":
        array = _npy_header((0, 10))
    elif case == "float64":
        array = _npy_header((1, 10), "<f8") + bytes(80)
    elif case == "object":
        array = _npy_header((1, 10), "|O") + bytes(80)
    elif case == "3-d":
        array = _npy_header((1, 10, 1)) + bytes(40)
    elif case == "short":
        array = _npy_header((1, 20)) + bytes(40)
        manifest["source"]["frames"] = 20
    elif case == "header 4 GiB":
        array = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{}"
    elif case == "version 9":
        array = b"\x93NUMPY\x09\x00" + bytes(100)
    elif case == "nan":
        array = _npy_header((1, 10)) + np.full((1, 10), np.nan, dtype=np.float32).tobytes()
    else:
        array = _npy_header(good.shape) + good.tobytes()
    bad = _with_manifest(tmp_path / "bad.scalproj", manifest, **{"source.npy": array})
    with pytest.raises(ProjectError) as caught:
        open_project(bad, device="cpu")
    assert words in str(caught.value) and "bad.scalproj" in str(caught.value) and "\n" not in str(caught.value)
    code, _, err = _render([bad, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "bad.scalproj", words)


def test_an_embedded_render_of_another_shape_is_refused(take, tmp_path):
    doc = _document(take)
    doc.push(Edit(TimeRange(0.1, 0.2), "erase"))
    doc.render()
    path = doc.save_project(tmp_path / "r.scalproj", embed_render=True)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("project.json"))
    longer = np.zeros((1, doc.frames + 5), dtype=np.float32)
    bad = _with_manifest(tmp_path / "bad.scalproj", manifest, **{"render.npy": _npy_header(longer.shape)
                                                                + longer.tobytes()})
    with pytest.raises(ProjectError, match=r"render.npy is \[1, 8005\] but the project's source is \[1, 8000\]"):
        open_project(bad, device="cpu")
    assert open_project(path, device="cpu").rendered is not None  # the good one still opens with its render


def test_embedded_sources_still_open(take, tmp_path):
    doc = _document(take)
    for how in ("npy", "flac"):
        path = doc.save_project(tmp_path / f"{how}.scalproj", embed_source=how)
        take.rename(tmp_path / "away.wav")
        try:
            back = open_project(path, device="cpu")
            assert back.samples.shape == doc.samples.shape
            assert np.allclose(back.samples, doc.samples, atol=1e-6)
        finally:
            (tmp_path / "away.wav").rename(take)


def test_folders_and_symlink_loops_are_refused_as_project_and_source(project, tmp_path, capsys):
    os.symlink("loop.scalproj", tmp_path / "loop.scalproj")
    (tmp_path / "folder.scalproj").mkdir()
    for path, words in [(tmp_path / "loop.scalproj", "Too many levels of symbolic links"),
                        (tmp_path / "folder.scalproj", "is a folder, not a regular file"),
                        (tmp_path / "none.scalproj", "no such file")]:
        code, _, err = _render([path, "-o", tmp_path / "o.wav"], capsys)
        _assert_one_line(code, err, path.name, words)
    for source, words in [(tmp_path / "loop.scalproj", "Too many levels of symbolic links"),
                          (tmp_path, "is a folder, not a regular file"),
                          (tmp_path / "none.wav", "no such file")]:
        code, _, err = _render([project, "--source", source, "-o", tmp_path / "o.wav"], capsys)
        _assert_one_line(code, err, "good.scalproj", f"source '{source}'", words)


# --------------------------------------------------------------------------- saving


def test_a_project_that_could_not_be_opened_again_is_not_saved(take, tmp_path):
    doc = _document(take)
    path = doc.save_project(tmp_path / "p.scalproj")
    before = path.read_bytes()
    # 50,000 edits: a manifest over the 8 MiB a project may hold.
    doc.restore(tuple(Edit(TimeRange(0.1, 0.2 + i * 1e-6), "erase") for i in range(50_000)))
    with pytest.raises(ProjectError, match="cannot save project .*p.scalproj.* bytes of JSON, more than the 8388608"):
        doc.save_project(path)
    assert path.read_bytes() == before
    wide = Document(np.zeros((65, 400), dtype=np.float32), SR, settings=FrameSettings(SR, 12, fmin=60.0),
                    device="cpu")
    with pytest.raises(ProjectError, match="65 channel.*projects hold 1 to 64 channels"):
        wide.save_project(tmp_path / "wide.scalproj")
    assert not (tmp_path / "wide.scalproj").exists()


def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(take, tmp_path):
    real = tmp_path / "real" / "p.scalproj"
    real.parent.mkdir()
    doc = _document(take)
    doc.save_project(real)
    link = tmp_path / "link.scalproj"
    link.symlink_to(real)
    doc.push(Edit(TimeRange(0.1, 0.2), "erase"))
    doc.save_project(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert len(read_project(real).edits) == 1


# --------------------------------------------------------------------------- render --batch collisions


def _save_wave(path):
    """A ``.wave`` file (save_audio writes .wav only): a .wav renamed."""
    written = path.with_name("written-as.wav")
    save_audio(written, signals.example_sound(SR)[:1, : SR // 4].copy() * 0.5, SR, bit_depth=16)
    written.rename(path)


@pytest.mark.parametrize("names, fmt, clash", [
    (["x.wav", "x.flac"], "wav", ("x.flac", "x.wav", "x.wav")),
    (["y.wav", "y.wave"], None, ("y.wav", "y.wave", "y.wav")),
    (["X.wav", "x.wav"], None, ("X.wav", "x.wav", "x.wav")),
])
def test_batch_inputs_with_one_output_name_are_refused_before_anything_is_written(names, fmt, clash, project,
                                                                                  tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        if name.endswith(".wave"):
            _save_wave(folder / name)
        else:
            save_audio(folder / name, signals.example_sound(SR)[:1, : SR // 4].copy() * 0.5, SR)
    if len(os.listdir(folder)) < len(names):
        pytest.skip("this file system does not tell X.wav from x.wav")
    before = snapshot(tmp_path)
    code, out, err = _render([project, "--batch", folder, "-o", tmp_path / "out",
                              *(["--format", fmt] if fmt else [])], capsys)
    first, second, output = clash
    _assert_one_line(code, err, f"'{first}' and '{second}'", f"would both be written to '{tmp_path / 'out' / output}'",
                     "nothing was written")
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_batch_refuses_an_output_that_is_a_link_to_an_input(project, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    save_audio(folder / "a.wav", signals.example_sound(SR)[:1, : SR // 4].copy() * 0.5, SR)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.wav").symlink_to(folder / "a.wav")
    before = snapshot(tmp_path)
    code, _, err = _render([project, "--batch", folder, "-o", tmp_path / "out"], capsys)
    _assert_one_line(code, err, "it is", "a link to an input")
    assert snapshot(tmp_path) == before


def test_batch_names_that_differ_give_one_output_each(project, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.wav", "x.flac"):
        save_audio(folder / name, signals.example_sound(SR)[:1, : SR // 4].copy() * 0.5, SR)
    code, out, _ = _render([project, "--batch", folder, "-o", tmp_path / "out"], capsys)
    assert code == 0 and "rendered 2 of 2" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.flac", "x.wav"]


# --------------------------------------------------------------------------- plugin edits that would be skipped


@pytest.mark.parametrize("edit, words", [
    (PluginEdit("transpose", {"semitones": 1e9}, None), "edit 1 (plugin 'transpose') cannot be applied"),
    (PluginEdit("no-such-plugin", {}, None), "edit 1 (plugin 'no-such-plugin') cannot be applied"),
])
def test_a_plugin_edit_that_cannot_be_applied_fails_the_render(edit, words, take, tmp_path, capsys):
    doc = _document(take)
    doc.restore((edit,))
    path = doc.save_project(tmp_path / "p.scalproj")
    code, _, err = _render([path, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "cannot render", "p.scalproj", words)
    assert not (tmp_path / "o.wav").exists()
    folder = tmp_path / "in"
    folder.mkdir()
    save_audio(folder / "a.wav", signals.example_sound(SR)[:1, : SR // 4].copy() * 0.5, SR)
    code, out, _ = _render([path, "--batch", folder, "-o", tmp_path / "out"], capsys)
    assert code == 1 and "rendered 0 of 1" in out and words in out
    assert list((tmp_path / "out").iterdir()) == []


def test_a_plugin_edit_that_fails_while_rendering_fails_the_render(take, tmp_path, capsys, monkeypatch):
    import scalgui.plugins.host as host

    doc = _document(take)
    doc.restore((PluginEdit("transpose", {"semitones": 2.0}, None),))
    path = doc.save_project(tmp_path / "p.scalproj")

    def broken(plugin, *args, **kwargs):
        raise PluginError(f"{plugin.name} failed: RuntimeError: out of ideas", plugin.name)

    monkeypatch.setattr(host, "_run_plugin", broken)
    code, _, err = _render([path, "-o", tmp_path / "o.wav"], capsys)
    _assert_one_line(code, err, "p.scalproj", "skipped a plugin edit: transpose failed", "nothing was written")
    assert not (tmp_path / "o.wav").exists()


def test_a_lasso_of_the_most_points_a_project_may_hold_renders_in_bounded_memory(tmp_path):
    """A zig-zag lasso of 10,000 points (the most a project accepts) across 4 s: each of
    its edges crosses every band, which once took a gigabyte per band to rasterise."""
    from scalgui.dsp.edits import Lasso

    path = tmp_path / "long.wav"
    save_audio(path, np.tile(signals.example_sound(SR)[:1], (1, 2))[:, : 4 * SR].copy() * 0.5, SR, bit_depth=24)
    doc = _document(path)
    zigzag = tuple((4.0 * i / 9999, 100.0 if i % 2 else 5000.0) for i in range(10_000))
    doc.restore((Edit(Lasso(zigzag), "gain", -20.0),))
    project = doc.save_project(tmp_path / "lasso.scalproj")
    outcome = run_scalgui(["render", project, "-o", tmp_path / "out.wav", "--iters", "1"])
    print(f"10,000-point lasso over 4 s: {outcome.seconds:.1f} s, peak {outcome.peak_mb:.0f} MB")
    assert outcome.code == 0, outcome.stderr_lines
    assert outcome.peak_bytes < 1536 * 2**20
