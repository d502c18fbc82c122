"""Hostile inputs on the surfaces added after the checkpoints: ``predict``, folder datasets, the data folder.

Table by table, one class of hostile input each: files the package writes (``--attention``,
``train --out``, ``export``), image files, checkpoints whose metadata does not fit their model,
folder datasets, concurrent writers, and a damaged data folder. Every case asserts the one line a
user reads (or, for inputs that must be handled, what they get) and that nothing the user had
changed: every file under the case's folder is hashed before and after.

All inputs are made here, small: a bomb is a header that declares a huge image, not a huge
image, and the "several GB" file is sparse (no disk space, and the reader must not read it).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vit_tutorial import cli
from vit_tutorial import data as D
from vit_tutorial.files import OutputFiles, atomic_write
from vit_tutorial.images import ImageError, load_image_folder, read_image, split_folder
from vit_tutorial.imagedata import DataUnavailableError
from vit_tutorial.locations import SHIPPED_SHA256, file_sha256

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "data" / "digits_vit.pt"


# --------------------------------------------------------------------------- the workspace


@pytest.fixture(scope="module")
def digit_pngs() -> list[bytes]:
    """Two real test digits, enlarged and saved as PNG bytes."""
    x = D.load_digits().x_test[:2, 0].numpy()
    return [cv2.imencode(".png", cv2.resize(img, (56, 56)))[1].tobytes() for img in x]


@pytest.fixture
def work(tmp_path, monkeypatch, digit_pngs) -> Path:
    """The current folder of a case: two good digits, a photo of the user's, a note, a finished 'run' folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g1.png").write_bytes(digit_pngs[0])
    (tmp_path / "g2.png").write_bytes(digit_pngs[1])
    shutil.copy(ROOT / "data" / "photos" / "coffee.jpg", tmp_path / "mine.jpg")
    (tmp_path / "notes.txt").write_text("the user's own notes\n")
    return tmp_path


def snapshot(root: Path) -> dict:
    """Every path under ``root``: a hash of its bytes (a file over 50 MB, such as a sparse one: its size and
    modification time), the target of a link, or the kind of a folder or FIFO."""
    state = {}
    for p in sorted(root.rglob("*")):
        key = p.relative_to(root).as_posix()
        if p.is_symlink():
            state[key] = "link -> " + os.readlink(p)
        elif p.is_dir():
            state[key] = "dir"
        elif not p.is_file():
            state[key] = "special"
        elif (size := p.stat().st_size) > 50 << 20:
            state[key] = f"{size} {p.stat().st_mtime_ns}"
        else:
            state[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def run_cli(capsys, argv) -> tuple[int, str, str]:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err
    return lines


# --------------------------------------------------------------------------- hostile image files


def png(width: int, height: int, idat: bytes | None = None, extra: list | None = None) -> bytes:
    """A PNG of grey 8-bit pixels with the IHDR, chunks and IDAT given (the pixels need not match the header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    if idat is None:
        idat = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(height)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + b"".join(chunk(k, v) for k, v in extra or []) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def noisy_png(width: int, height: int) -> bytes:
    """A PNG of random pixels: its IDAT is about as large as the image (zeros would compress to nothing)."""
    rows = np.random.default_rng(0).integers(0, 256, (height, width), dtype=np.uint8)
    return png(width, height, idat=zlib.compress(b"".join(b"\0" + r.tobytes() for r in rows)))


def encoded(ext: str, img=None) -> bytes:
    img = np.tile(np.arange(48, dtype=np.uint8), (40, 1)) if img is None else img
    return cv2.imencode(ext, img)[1].tobytes()


def jpeg_sized(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) says ``width`` x ``height``."""
    b = bytearray(encoded(".jpg"))
    sof = b.index(b"\xff\xc0")
    b[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(b)


def jpeg_without_frame() -> bytes:
    b = bytearray(encoded(".jpg"))
    b[b.index(b"\xff\xc0") + 1] = 0xE5  # the frame header becomes an application segment
    return bytes(b)


def bmp_sized(width: int, height: int) -> bytes:
    b = bytearray(encoded(".bmp"))
    b[18:26] = struct.pack("<ii", width, height)
    return bytes(b)


def flipped(data: bytes, at: float) -> bytes:
    b = bytearray(data)
    b[int(len(b) * at)] ^= 0xFF
    return bytes(b)


def write_bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def sparse(size: int):
    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)
    return make


IMAGE_CASES = [  # (id, how the hostile file named bad.<ext> is made, extension, the line's pattern after "bad.<ext>: ")
    ("empty", write_bytes(b""), ".png", r"an empty file \(0 bytes\)$"),
    ("text-named-png", write_bytes(b"just some notes\n"), ".png", r"not an image OpenCV can read \(the formats"),
    ("png-signature-only", write_bytes(b"\x89PNG\r\n\x1a\n"), ".png", r"truncated or damaged: its header ends early"),
    ("png-cut-in-ihdr", write_bytes(png(8, 8)[:20]), ".png", r"truncated or damaged: its header ends early"),
    ("png-cut-in-idat", write_bytes(noisy_png(40, 40)[:600]), ".png", r"a truncated PNG: its IDAT chunk ends past the end"),
    ("png-without-iend", write_bytes(png(8, 8)[:-12]), ".png", r"a truncated PNG: it ends before its last chunk"),
    ("png-flipped-byte", write_bytes(flipped(noisy_png(40, 40), 0.6)), ".png", r"a damaged PNG: its IDAT chunk fails its CRC"),
    ("png-bomb-30000", write_bytes(png(30000, 30000, idat=zlib.compress(b"\0" * 30001))), ".png",
     r"its PNG header declares 30000x30000 pixels \(900 million\), more than the 100 million allowed .*"
     r"VIT_TUTORIAL_MAX_IMAGE_PIXELS=900000000$"),
    ("png-bomb-past-opencv", write_bytes(png(60000, 60000, idat=zlib.compress(b"\0" * 60001))), ".png",
     r"declares 60000x60000 pixels"),
    ("png-zero-width", write_bytes(png(0, 8, idat=zlib.compress(b"\0" * 8))), ".png",
     r"its PNG header declares 0x8 pixels: no image$"),
    ("png-idat-garbage", write_bytes(png(8, 8, idat=b"not zlib at all")), ".png",
     r"a damaged PNG: its compressed pixels are not valid \(Error -3 while decompressing data: incorrect header"),
    ("png-bad-row-filter", write_bytes(png(8, 8, idat=zlib.compress(b"\x09" + bytes(8 * 9 - 1)))), ".png",
     r"a damaged PNG: a row of its pixels has an unknown filter$"),
    ("png-rows-missing", write_bytes(png(8, 8, idat=zlib.compress(bytes(9 * 3)))), ".png",
     r"a damaged PNG: its pixels stop after 3 of its 8 rows$"),
    ("webp-garbage-pixels", write_bytes(encoded(".webp")[:30] + bytes(len(encoded(".webp")) - 30)), ".webp",
     r"a damaged WebP file: its header is valid but its pixels cannot be decoded$"),
    ("jpeg-cut-in-half", write_bytes(encoded(".jpg")[:300]), ".jpg", r"a truncated JPEG"),
    ("jpeg-without-eoi", write_bytes(encoded(".jpg")[:-2]), ".jpg", r"a truncated JPEG: it has no end-of-image marker$"),
    ("jpeg-soi-only", write_bytes(b"\xff\xd8"), ".jpg", r"a truncated JPEG: it ends inside its header$"),
    ("jpeg-bomb", write_bytes(jpeg_sized(60000, 60000)), ".jpg", r"its JPEG header declares 60000x60000 pixels"),
    ("jpeg-without-frame", write_bytes(jpeg_without_frame()), ".jpg", r"a damaged JPEG: it has no frame header"),
    ("bmp-cut", write_bytes(encoded(".bmp")[:200]), ".bmp", r"a truncated BMP: 200 of its"),
    ("bmp-bomb", write_bytes(bmp_sized(50000, -50000)), ".bmp", r"its BMP header declares 50000x50000 pixels"),
    ("webp-cut", write_bytes(encoded(".webp")[:40]), ".webp", r"a truncated WebP: 40 of its"),
    ("tiff-without-size", write_bytes(b"II*\0\x08\0\0\0\0\0\0\0\0\0"), ".tif",
     r"a damaged TIFF: it declares no width and height$"),
    ("tiff-float-pixels", write_bytes(encoded(".tiff", np.ones((4, 4), np.float32))), ".tif",
     r"float32 pixels; save it as an 8- or 16-bit image$"),
    ("pgm-garbled-header", write_bytes(b"P5\n# made by hand\nxx 10\n255\n" + bytes(100)), ".pgm",
     r"truncated or damaged: its header ends early"),
    ("several-gb-sparse", sparse(3 << 30), ".png",
     r"3\.2 GB, more than the 268\.4 MB an image may take; .*VIT_TUTORIAL_MAX_IMAGE_BYTES=3221225472$"),
    ("a-folder", lambda p: p.mkdir(), ".png", r"no such file \(it is a folder\)$"),
    ("a-fifo", lambda p: os.mkfifo(p), ".png", r"not a regular file$"),
    ("dangling-link", lambda p: p.symlink_to(p.parent / "gone.png"), ".png", r"no such file$"),
    ("missing", lambda p: None, ".png", r"no such file$"),
]


@pytest.mark.parametrize("make,ext,match", [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_predict_refuses_a_hostile_image_in_one_line_and_goes_on(capsys, work, make, ext, match):
    bad = work / f"bad{ext}"
    make(bad)
    before = snapshot(work)
    code, out, err = run_cli(capsys, ["predict", "g1.png", bad.name, "g2.png"])
    assert code == 1
    (line,) = error_lines(err)
    assert line.startswith(f"error: {bad.name}: ") and re.search(match, line), line
    assert "g1.png:" in out and "g2.png:" in out  # the good ones on both sides were predicted
    assert snapshot(work) == before


NOISY = noisy_png(40, 40)
LIMIT_CASES = [  # (id, environment, the file, expected: None = read, else the refusal)
    ("pixels-lowered", {"VIT_TUTORIAL_MAX_IMAGE_PIXELS": "1000"}, NOISY,
     r"declares 40x40 pixels .*VIT_TUTORIAL_MAX_IMAGE_PIXELS=1600$"),
    ("pixels-raised", {"VIT_TUTORIAL_MAX_IMAGE_PIXELS": "1_600"}, NOISY, None),
    ("bytes-lowered", {"VIT_TUTORIAL_MAX_IMAGE_BYTES": "1000"}, NOISY,
     rf"{len(NOISY) / 1e3:.1f} kB, more than the 1\.0 kB an image may take; .*MAX_IMAGE_BYTES={len(NOISY)}$"),
    ("bytes-raised", {"VIT_TUTORIAL_MAX_IMAGE_BYTES": str(len(NOISY))}, NOISY, None),
]


@pytest.mark.parametrize("env,content,match", [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
def test_the_image_limits_are_the_users_to_raise(work, monkeypatch, env, content, match):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    (work / "img.png").write_bytes(content)
    before = snapshot(work)
    if match is None:
        assert read_image(work / "img.png").shape == (40, 40)
    else:
        with pytest.raises(ImageError) as e:
            read_image(work / "img.png")
        assert len(str(e.value).splitlines()) == 1 and re.search(match, str(e.value)), str(e.value)
    assert snapshot(work) == before


def test_a_limit_that_is_not_a_number_is_one_line(capsys, work, monkeypatch):
    monkeypatch.setenv("VIT_TUTORIAL_MAX_IMAGE_PIXELS", "lots")
    code, _, err = run_cli(capsys, ["predict", "g1.png"])
    assert code == 1 and error_lines(err) == ["error: VIT_TUTORIAL_MAX_IMAGE_PIXELS must be a positive whole "
                                              "number, got 'lots'"]


# --------------------------------------------------------------------------- EXIF orientation (handled)


def with_orientation(fmt: str, orientation: int) -> bytes:
    """A 30x20 picture with a distinct corner, saved by Pillow with EXIF orientation ``orientation``."""
    from PIL import Image

    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:5, :8] = (255, 0, 0)
    rgb[-4:, :, 1] = 200
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, exif=exif, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue()


EXIF_CASES = [(f"jpeg-{o}", "JPEG", o) for o in range(1, 9)] + [("png-6", "PNG", 6), ("webp-8", "WEBP", 8)]


@pytest.mark.parametrize("fmt,orientation", [c[1:] for c in EXIF_CASES], ids=[c[0] for c in EXIF_CASES])
def test_exif_orientation_is_honoured_as_a_viewer_shows_it(work, fmt, orientation):
    data = with_orientation(fmt, orientation)
    (work / "phone.img").write_bytes(data)
    before = snapshot(work)
    got = read_image(work / "phone.img")
    # OpenCV's IMREAD_COLOR applies EXIF orientation (its IMREAD_UNCHANGED does not): the reference
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert got.shape == shown.shape == ((20, 30, 3) if orientation < 5 else (30, 20, 3))
    assert np.abs(got.astype(int) - shown).max() <= 2
    assert snapshot(work) == before


# --------------------------------------------------------------------------- files the package writes


def hard_link(src: str, dst: str):
    return lambda w: os.link(w / src, w / dst)


def sym_link(dst: str, target: str):
    return lambda w: (w / dst).symlink_to(w / target)


def file_at(name: str, content: bytes = b"the user's own file\n"):
    def make(w: Path) -> None:
        (w / name).parent.mkdir(parents=True, exist_ok=True)
        (w / name).write_bytes(content)
    return make


WRITE_CASES = [  # (id, set-up, argv, the one line's pattern)
    ("attention-onto-the-image", [], ["predict", "mine.jpg", "--attention", "mine.jpg"],
     r"^error: predict --attention would overwrite its own source mine\.jpg; choose another destination$"),
    ("attention-onto-the-image-forced", [], ["predict", "mine.jpg", "--attention", "mine.jpg", "--force"],
     r"would overwrite its own source mine\.jpg"),
    ("attention-onto-a-hard-link-of-the-image", [hard_link("mine.jpg", "copy.jpg")],
     ["predict", "mine.jpg", "--attention", "copy.jpg", "--force"], r"would overwrite its own source mine\.jpg"),
    ("attention-onto-a-link-to-the-image", [sym_link("link.png", "mine.jpg")],
     ["predict", "mine.jpg", "--attention", "link.png", "--force"], r"would overwrite its own source mine\.jpg"),
    ("attention-onto-an-image-of-the-batch", [file_at("att-g1.png", b"another photo of the user's")],
     ["predict", "g1.png", "att-g1.png", "--attention", "att.png", "--force"],
     r"would overwrite its own source att-g1\.png"),
    ("attention-onto-an-existing-file", [file_at("out.png")], ["predict", "g1.png", "--attention", "out.png"],
     r"^error: out\.png already exists and is a file; choose another destination, or replace it with --force"),
    ("attention-onto-one-of-several", [file_at("att-g2.png")],
     ["predict", "g1.png", "g2.png", "--attention", "att.png"], r"^error: att-g2\.png already exists"),
    ("attention-onto-a-dangling-link", [sym_link("out.png", "nowhere.png")],
     ["predict", "g1.png", "--attention", "out.png"], r"out\.png already exists"),
    ("attention-onto-the-checkpoint", [file_at("model.pt", SHIPPED_MODEL.read_bytes())],
     ["predict", "g1.png", "--checkpoint", "model.pt", "--attention", "model.pt", "--force"],
     r"would overwrite its own source model\.pt"),
    ("attention-into-a-missing-folder", [], ["predict", "g1.png", "--attention", "nowhere/out.png"],
     r"^error: cannot write nowhere/out\.png: no folder nowhere$"),
    ("attention-onto-a-folder", [lambda w: (w / "shots").mkdir()], ["predict", "g1.png", "--attention", "shots"],
     r"^error: shots is a folder; give a file name, e\.g\. shots/out\.png$"),
    ("attention-under-a-file", [], ["predict", "g1.png", "--attention", "notes.txt/out.png"],
     r"cannot write notes\.txt/out\.png: notes\.txt is a file, not a folder$"),
    ("train-into-a-folder-with-curves", [file_at("p/curves.png", (ROOT / "data/photos/chelsea.jpg").read_bytes())],
     ["train", "--epochs", "1", "--out", "p", "--no-progress"],
     r"^error: p/curves\.png already exists and is a file; this run did not write it: move it away"),
    ("train-into-a-folder-with-metrics", [file_at("p/metrics.json", b"{}")],
     ["train", "--epochs", "1", "--out", "p", "--no-progress"], r"p already holds a run"),
    ("train-into-a-folder-with-a-curves-folder", [lambda w: (w / "p" / "curves.png").mkdir(parents=True)],
     ["train", "--epochs", "1", "--out", "p", "--no-progress"],
     r"p/curves\.png is a folder, where this run writes its curves\.png; move it away"),
    ("export-onto-a-hard-link-of-its-source", [file_at("model.pt", SHIPPED_MODEL.read_bytes()),
                                               hard_link("model.pt", "same.pt")],
     ["export", "model.pt", "same.pt", "--force"], r"export would overwrite its own source model\.pt"),
    ("export-onto-a-photo", [file_at("model.pt", SHIPPED_MODEL.read_bytes())], ["export", "model.pt", "mine.jpg"],
     r"mine\.jpg already exists and is a file; choose another destination, or replace it with --force"),
    ("export-onto-a-dangling-link", [file_at("model.pt", SHIPPED_MODEL.read_bytes()),
                                     sym_link("new.pt", "nowhere.pt")],
     ["export", "model.pt", "new.pt"], r"new\.pt already exists"),
]


@pytest.mark.parametrize("setup,argv,match", [c[1:] for c in WRITE_CASES], ids=[c[0] for c in WRITE_CASES])
def test_nothing_is_written_over_a_users_file(capsys, work, setup, argv, match):
    for make in setup:
        make(work)
    before = snapshot(work)
    code, out, err = run_cli(capsys, argv)
    assert code == 1
    (line,) = error_lines(err)
    assert re.search(match, line), line
    assert "%" not in out  # refused before a single prediction
    assert snapshot(work) == before


def test_force_replaces_an_old_overlay_but_never_an_input(capsys, work):
    (work / "out.png").write_bytes(b"an old overlay")
    before = snapshot(work)
    code, out, err = run_cli(capsys, ["predict", "g1.png", "--attention", "out.png", "--force"])
    assert code == 0 and err == "" and "attention rollout: out.png" in out
    after = snapshot(work)
    assert {k for k in before if before[k] != after[k]} == {"out.png"}
    assert cv2.imread("out.png").shape == (224, 224, 3)


def test_a_damaged_destination_folder_fails_each_write_in_one_line_and_the_batch_goes_on(capsys, work):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc, where no file can be created")
    code, out, err = run_cli(capsys, ["predict", "g1.png", "g2.png", "--attention", "/proc/vit-tutorial.png"])
    assert code == 1 and "g1.png:" in out and "g2.png:" in out
    lines = error_lines(err)
    assert len(lines) == 2 and all(re.match(r"error: /proc/vit-tutorial-g[12]\.png: could not write into /proc", line)
                                   for line in lines), lines


# --------------------------------------------------------------------------- concurrent writers


def race_two_writers(target: Path):
    """Two OutputFiles write ``target`` at the same moment: both finish their bytes, then both publish."""
    barrier, results = threading.Barrier(2), {}

    def writer(name: str) -> None:
        files = OutputFiles(f"writer {name}")

        def write(f):
            f.write(name.encode() * 1000)
            barrier.wait(timeout=10)
        try:
            results[name] = files.write(target, write)
        except ValueError as e:
            results[name] = str(e)
        finally:
            files.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_writers_racing_for_a_new_file_one_wins_whole(work):
    results = race_two_writers(work / "out.png")
    won = [n for n, r in results.items() if isinstance(r, Path)]
    lost = [r for r in results.values() if isinstance(r, str)]
    assert len(won) == 1 and len(lost) == 1
    assert re.fullmatch(r".*out\.png was created by another process while this one wrote it; it was left as it is: "
                        r"choose another destination, or replace it with --force \(force=True\)", lost[0])
    assert (work / "out.png").read_bytes() == won[0].encode() * 1000  # the winner's, whole
    assert not list(work.glob(".out.png.*.tmp"))


CONCURRENT_CASES = [  # (id, what happens, the refusal's pattern or None when the file must be the writer's)
    ("a-file-appears-while-writing", "appear", r"was created by another process while this one wrote it"),
    ("own-file-replaced-by-someone-else", "replace", r"already exists and is a file"),
    ("own-file-deleted-then-written-again", "delete", None),
    ("a-crash-mid-write-keeps-the-old-file", "crash", None),
]


@pytest.mark.parametrize("event,match", [c[1:] for c in CONCURRENT_CASES], ids=[c[0] for c in CONCURRENT_CASES])
def test_a_writer_never_replaces_what_another_put_there(work, event, match):
    target, files = work / "metrics.json", OutputFiles("this run", advice="move it away")
    files.write(target, lambda f: f.write(b"epoch 1"))
    user = b"the user's file, put there by hand"

    def write(f):
        f.write(b"epoch 2")
        if event == "appear":
            target.unlink()
            target.write_bytes(user)
        if event == "crash":
            raise KeyboardInterrupt

    if event == "replace":
        target.unlink()
        target.write_bytes(user)
    if event == "delete":
        target.unlink()
    before = snapshot(work)
    if event == "crash":
        with pytest.raises(KeyboardInterrupt):
            files.write(target, write)
        assert snapshot(work) == before and target.read_bytes() == b"epoch 1"
    elif match is None:
        files.write(target, write)
        assert target.read_bytes() == b"epoch 2"
    else:
        with pytest.raises(ValueError, match=match) as e:
            files.write(target, write)
        assert len(str(e.value).splitlines()) == 1 and target.read_bytes() == user
    files.close()
    assert not list(work.glob(".metrics.json.*.tmp"))


def test_atomic_write_without_replace_refuses_an_existing_file(work):
    before = snapshot(work)
    with pytest.raises(FileExistsError):
        atomic_write(work / "notes.txt", lambda f: f.write(b"new"), replace=False)
    assert snapshot(work) == before


# --------------------------------------------------------------------------- checkpoints that do not fit their model


def edited_model(change):
    def make(w: Path) -> None:
        state = torch.load(SHIPPED_MODEL, weights_only=True)
        change(state)
        torch.save(state, w / "edited.pt")
    return make


def set_data(key, value):
    def change(state):
        if value is KeyError:
            del state["data"][key]
        else:
            state["data"][key] = value
    return change


CHECKPOINT_CASES = [
    ("fewer-classes", set_data("classes", ["0", "1", "2"]), r"it names 3 classes, but its model has 10 outputs"),
    ("more-classes", set_data("classes", [str(i) for i in range(12)]), r"it names 12 classes, but its model has 10"),
    ("classes-a-string", set_data("classes", "0123456789"), r"its class names are a str, not a list of names"),
    ("classes-of-tensors", set_data("classes", [torch.zeros(1)] * 10), r"its class names hold a Tensor, not names"),
    ("mean-for-3-channels", set_data("mean", [0.1, 0.1, 0.1]),
     r"its normalisation mean has 3 values, but its model takes 1 channel\(s\)"),
    ("std-for-3-channels", set_data("std", [0.3, 0.3, 0.3]), r"its normalisation std has 3 values"),
    ("no-std", set_data("std", KeyError), r"does not record its training data's normalisation \(no data\['std'\]\)"),
    ("mean-nan", set_data("mean", [float("nan")]), r"its normalisation mean is \[nan\], not a list of numbers"),
    ("mean-a-string", set_data("mean", "0.13"), r"its normalisation mean is '0\.13', not a list of numbers"),
    ("std-zero", set_data("std", [0.0]), r"its normalisation std \[0\.0\] has a value that is not positive"),
    ("data-a-list", lambda s: s.__setitem__("data", [1, 2]), r"edited\.pt is damaged: its data is a list"),
]


@pytest.mark.parametrize("change,match", [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES])
def test_a_checkpoint_that_does_not_fit_its_model_is_blamed_not_the_image(capsys, work, change, match):
    edited_model(change)(work)
    before = snapshot(work)
    code, out, err = run_cli(capsys, ["predict", "g1.png", "--checkpoint", "edited.pt"])
    assert code == 1
    (line,) = error_lines(err)
    assert line.startswith("error: edited.pt") and re.search(match, line) and "g1.png" not in line, line
    assert snapshot(work) == before


# --------------------------------------------------------------------------- folder datasets


def image_folder(layout: dict[str, int], size=(12, 12)):
    """A folder of PNGs: ``{"cat": 3, "train/dog": 2, ...}`` makes that many images in each subfolder."""
    def make(w: Path) -> None:
        for k, (sub, n) in enumerate(layout.items()):
            (w / "ds" / sub).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                cv2.imwrite(str(w / "ds" / sub / f"{i}.png"), np.full(size, 30 * k + i, np.uint8))
    return make


def also(*makers):
    def make(w: Path) -> None:
        for m in makers:
            m(w)
    return make


FOLDER_CASES = [  # (id, the folder, the one line's pattern)
    ("one-class", image_folder({"cat": 4}), r"ds has one class folder \(cat\); a classifier needs at least two"),
    ("one-class-in-train", image_folder({"train/cat": 3, "test/cat": 1}), r"ds/train has one class folder \(cat\)"),
    ("class-without-test-images", image_folder({"train/cat": 3, "train/dog": 3, "test/cat": 1}),
     r"class\(es\) dog of ds/train have no test images in ds/test, so the test accuracy would leave them out"),
    ("test-class-unknown", image_folder({"train/cat": 3, "train/dog": 3, "test/cat": 1, "test/dog": 1, "test/owl": 1}),
     r"ds/test has classes that ds/train lacks: owl"),
    ("no-class-folders", also(image_folder({"cat": 1}), lambda w: shutil.rmtree(w / "ds" / "cat"),
                              lambda w: (w / "ds" / "loose.png").write_bytes(png(4, 4))),
     r"ds has no class subfolders"),
    ("empty-class", also(image_folder({"cat": 3, "dog": 3}), lambda w: (w / "ds" / "owl").mkdir()),
     r"class folder\(s\) owl in ds hold no images"),
    ("single-image-class", image_folder({"cat": 3, "dog": 1}), r"class\(es\) dog in ds have a single image"),
    ("an-empty-image", also(image_folder({"cat": 3, "dog": 3}), lambda w: (w / "ds" / "dog" / "z.png").write_bytes(b"")),
     r"ds/dog/z\.png: an empty file \(0 bytes\) \(in the dataset ds; remove or replace it\)$"),
    ("a-bomb-in-a-class", also(image_folder({"cat": 3, "dog": 3}),
                               lambda w: (w / "ds" / "cat" / "b.png").write_bytes(
                                   png(30000, 30000, idat=zlib.compress(b"\0" * 30001)))),
     r"ds/cat/b\.png: its PNG header declares 30000x30000 pixels"),
    ("three-bad-images", also(image_folder({"cat": 3, "dog": 3}),
                              *[lambda w, i=i: (w / "ds" / "dog" / f"bad{i}.png").write_bytes(b"x") for i in range(3)]),
     r"ds/dog/bad\d\.png: not an image .*with 2 more image\(s\) that cannot be used; remove or replace them\)$"),
    ("a-truncated-nested-image", also(image_folder({"cat": 3, "dog": 3, "dog/old": 1}),
                                      lambda w: (w / "ds/dog/old/t.jpg").write_bytes(encoded(".jpg")[:-2])),
     r"ds/dog/old/t\.jpg: a truncated JPEG"),
]


@pytest.mark.parametrize("make,match", [c[1:] for c in FOLDER_CASES], ids=[c[0] for c in FOLDER_CASES])
def test_train_refuses_a_folder_dataset_that_would_train_on_the_wrong_thing(capsys, work, make, match):
    make(work)
    before = snapshot(work)
    code, out, err = run_cli(capsys, ["train", "--dataset", "ds", "--out", "run", "--epochs", "1", "--no-progress"])
    assert code == 1
    (line,) = error_lines(err)
    assert re.search(match, line), line
    assert snapshot(work) == before  # no run folder left behind either


HANDLED_FOLDERS = [  # (id, the folder, classes, training images, test images)
    ("nested-subfolders-are-taken", image_folder({"cat": 2, "cat/indoor": 3, "dog": 3, "dog/a/b": 2}),
     ["cat", "dog"], 8, 2),
    ("hidden-folders-and-files-left-out", also(image_folder({"cat": 3, "dog": 3, "cat/.ipynb_checkpoints": 4}),
                                               lambda w: (w / "ds/dog/.DS_Store").write_bytes(b"\0\0")),
     ["cat", "dog"], 4, 2),
    ("a-link-back-up-is-not-followed", also(image_folder({"cat": 3, "dog": 3}),
                                            lambda w: (w / "ds/cat/loop").symlink_to(w / "ds")),
     ["cat", "dog"], 4, 2),
    ("other-files-left-out", also(image_folder({"cat": 3, "dog": 3}),
                                  lambda w: (w / "ds/cat/readme.txt").write_text("cats")),
     ["cat", "dog"], 4, 2),
    ("train-and-test-given", image_folder({"train/cat": 3, "train/dog": 2, "test/cat": 1, "test/dog": 1}),
     ["cat", "dog"], 5, 2),
]


@pytest.mark.parametrize("make,classes,n_train,n_test", [c[1:] for c in HANDLED_FOLDERS],
                         ids=[c[0] for c in HANDLED_FOLDERS])
def test_folder_datasets_take_what_imagefolder_takes(work, make, classes, n_train, n_test):
    make(work)
    before = snapshot(work)
    got_classes, train, test = split_folder(work / "ds")
    assert got_classes == classes and len(train) == n_train and len(test) == n_test
    data = load_image_folder(work / "ds", image_size=8)
    assert data.x_train.shape == (n_train, 1, 8, 8) and data.classes == classes
    assert snapshot(work) == before


def test_a_photo_on_its_side_trains_upright(work):
    (work / "ds" / "a").mkdir(parents=True)
    (work / "ds" / "b").mkdir()
    for i in range(2):
        (work / "ds" / "a" / f"{i}.jpg").write_bytes(with_orientation("JPEG", 6))
        (work / "ds" / "b" / f"{i}.jpg").write_bytes(with_orientation("JPEG", 1))
    data = load_image_folder(work / "ds", image_size=30)
    a, b = data.x_train[data.y_train == 0][0], data.x_train[data.y_train == 1][0]
    assert a[0, :6, -6:].float().mean() > 150  # turned: the red corner is now at the top right
    assert b[0, :4, :6].float().mean() > 150  # as stored: top left


# --------------------------------------------------------------------------- a damaged data folder


def damage(relative: str, how: str):
    def make(folder: Path) -> None:
        path = folder / relative
        data = path.read_bytes()
        if how == "flip":
            path.write_bytes(flipped(data, 0.5))
        elif how == "truncate":
            path.write_bytes(data[:len(data) // 3])
        elif how == "empty":
            path.write_bytes(b"")
        elif how == "folder":
            path.unlink()
            path.mkdir()
        elif how == "floats":  # a valid npz of the right keys, with values of the wrong kind
            with np.load(io.BytesIO(data)) as f:
                arrays = {k: f[k] for k in f.files}
            with open(path, "wb") as f:
                np.savez(f, **{**arrays, "x_train": arrays["x_train"].astype(np.float64)})
    return make


def load_digits_line(capsys) -> str:
    with pytest.raises(DataUnavailableError) as e:
        D.load_digits()
    return str(e.value)


def predict_line(capsys) -> str:
    code, _, err = run_cli(capsys, ["predict", "g1.png"])
    assert code == 1
    (line,) = error_lines(err)
    return line


def check_data_line(capsys) -> str:
    code, out, err = run_cli(capsys, ["check-data"])
    assert code == 1 and "  damaged  " in out
    (line,) = error_lines(err)
    return line


def sample_photo_line(capsys) -> str:
    with pytest.raises(DataUnavailableError) as e:
        D.sample_photo("chelsea")
    return str(e.value)


RESTORE = r"git checkout -- data/{}"
DATA_CASES = [  # (id, damage, what the user does, the line's pattern)
    ("digits-flipped-byte", damage("digits.npz", "flip"), load_digits_line,
     r"digits\.npz is damaged: its SHA-256 is [0-9a-f]{12}\.\.\., not the 4b84859b4445\.\.\. it shipped with"),
    ("digits-truncated", damage("digits.npz", "truncate"), load_digits_line, r"digits\.npz is damaged"),
    ("digits-empty", damage("digits.npz", "empty"), load_digits_line, r"digits\.npz is damaged: .*\(0 bytes\)"),
    ("digits-floats", damage("digits.npz", "floats"), load_digits_line, r"digits\.npz is damaged"),
    ("digits-a-folder", damage("digits.npz", "folder"), load_digits_line, r"digits\.npz is missing \(a folder is in"),
    ("model-flipped-byte", damage("digits_vit.pt", "flip"), predict_line, r"digits_vit\.pt is damaged: its SHA-256"),
    ("model-truncated", damage("digits_vit.pt", "truncate"), predict_line, r"digits_vit\.pt is damaged"),
    ("photo-flipped-byte", damage("photos/chelsea.jpg", "flip"), sample_photo_line, r"chelsea\.jpg is damaged"),
    ("check-data-digits", damage("digits.npz", "truncate"), check_data_line,
     r"^error: the offline notebooks need: digits \(embedded\) \(damaged\)$"),
    ("check-data-model", damage("digits_vit.pt", "empty"), check_data_line, r"trained digits model \(damaged\)$"),
    ("check-data-photo", damage("photos/coffee.jpg", "truncate"), check_data_line, r"sample photos \(damaged\)$"),
]


@pytest.mark.parametrize("make,action,match", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_a_damaged_data_folder_names_the_file_and_how_to_restore_it(capsys, work, monkeypatch, make, action, match):
    folder = work / "shared-drive"
    shutil.copytree(ROOT / "data", folder, ignore=shutil.ignore_patterns("downloads"))
    make(folder)
    monkeypatch.setattr(D, "DATA_DIR", folder)
    monkeypatch.setattr(D, "DOWNLOAD_DIR", work / "downloads")
    before = snapshot(work)
    line = action(capsys)
    assert re.search(match, line), line
    assert len(line.splitlines()) == 1 and "Traceback" not in line and "allow_pickle" not in line
    if action is not check_data_line:
        assert "pip install --force-reinstall" in line and "git checkout -- data/" in line
    assert snapshot(work) == before


def own_digits(change):
    """A digits file of the user's own (not the shipped one): the shipped arrays with one thing changed."""
    def make(path: Path) -> None:
        with np.load(ROOT / "data" / "digits.npz") as f:
            arrays = {k: f[k][:50] for k in f.files}
        change(arrays)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return make


def raw(content: bytes):
    return lambda path: path.write_bytes(content)


def single_npy(path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def pickled(path: Path) -> None:
    with open(path, "wb") as f:
        np.savez(f, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1), x_test=np.zeros(1),
                 y_test=np.zeros(1))


OWN_DIGITS_CASES = [
    ("object-arrays", pickled, r"its x_train holds Python objects, which are never loaded"),
    ("a-pickle", raw(b"\x80\x04\x95" + bytes(40)), r"it holds pickled Python objects, which are never loaded"),
    ("a-single-npy", single_npy, r"a single array, not an \.npz archive"),
    ("counting-bytes", raw(bytes(range(64))), r"not a valid digits file"),
    ("empty", raw(b""), r"not a valid digits file \(EOFError"),
    ("zip-cut", lambda p: (own_digits(lambda a: None)(p), p.write_bytes(p.read_bytes()[:2000])),
     r"not a valid digits file \(BadZipFile"),
    ("labels-out-of-range", own_digits(lambda a: a["y_train"].__setitem__(0, 12)),
     r"its y_train runs from \d+ to 12, expected 0 to 9"),
    ("float-pixels", own_digits(lambda a: a.__setitem__("x_test", a["x_test"].astype(np.float32))),
     r"its x_test is float32 \(50, 28, 28\), expected uint8"),
    ("missing-key", own_digits(lambda a: a.pop("y_test")), r"it has no y_test"),
    ("labels-too-few", own_digits(lambda a: a.__setitem__("y_train", a["y_train"][:10])),
     r"its y_train is u?int\d+ \(10,\), expected 50 integer labels"),
]


@pytest.mark.parametrize("make,match", [c[1:] for c in OWN_DIGITS_CASES], ids=[c[0] for c in OWN_DIGITS_CASES])
def test_a_digits_file_of_ones_own_is_checked_and_never_unpickled(work, make, match):
    path = work / "my-digits.npz"
    make(path)
    before = snapshot(work)
    with pytest.raises(DataUnavailableError) as e:
        D.load_digits(path)
    msg = str(e.value)
    assert msg.startswith(f"{path} is not a valid digits file (") and re.search(match, msg), msg
    assert len(msg.splitlines()) == 1 and "allow_pickle" not in msg
    assert snapshot(work) == before


def test_the_checksums_in_the_code_the_readme_and_the_files_agree():
    readme = dict(re.findall(r"^\| `([\w/.]+)` \| `([0-9a-f]{64})` \|$", (ROOT / "data" / "README.md").read_text(),
                             re.MULTILINE))
    assert readme == SHIPPED_SHA256
    assert {name: file_sha256(ROOT / "data" / name) for name in SHIPPED_SHA256} == SHIPPED_SHA256
    shipped = {p.relative_to(ROOT / "data").as_posix() for p in (ROOT / "data").rglob("*")
               if p.is_file() and p.suffix in (".npz", ".pt", ".jpg")}
    assert shipped == set(SHIPPED_SHA256)  # every shipped file has its checksum


def test_a_damaged_folder_named_by_the_environment_variable_is_reported(work):
    """End to end, as a classroom's shared drive is used: VIT_TUTORIAL_DATA, a fresh process, check-data."""
    import subprocess
    import sys

    folder = work / "drive"
    shutil.copytree(ROOT / "data", folder, ignore=shutil.ignore_patterns("downloads"))
    damage("digits.npz", "flip")(folder)
    before = snapshot(work)
    env = {**os.environ, "VIT_TUTORIAL_DATA": str(folder), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "vit_tutorial", "check-data"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and f"damaged  digits (embedded): {folder / 'digits.npz'} (damaged: its SHA-256" \
        in done.stdout
    assert done.stderr.strip().splitlines() == ["error: the offline notebooks need: digits (embedded) (damaged)"]
    assert snapshot(work) == before
