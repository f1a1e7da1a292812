"""apps/track.py and apps/features.py: in a real window under Xvfb, headless with saved video and JSON, and
against cameras and streams that fail (a message and a bounded exit, never a hang)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACK, FEATURES = ROOT / "apps" / "track.py", ROOT / "apps" / "features.py"
FAIL_FAST = ["--timeout", "2", "--retries", "1"]


@dataclass
class Clip:
    model: Path  # vit_test ONNX at 112x112
    video: Path  # mp4v, 240x320, `frames` frames of a generated sequence with two moving objects
    long_video: Path  # the same, 4 times over: a window that stays up long enough to screenshot
    mask: Path  # palette PNG of the first frame's objects
    boxes: list[str]  # --box values of the first frame's objects
    frames: int
    rgb: list[np.ndarray]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Clip:
    import cv2

    from edgedino.export import export
    from edgedino.track.palette import write_indexed_png
    from edgedino.track.synth import SynthConfig, make_sequence

    out = tmp_path_factory.mktemp("apps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = export(targets=["onnx"], model="vit_test", imgsz=112, out=out, log=lambda m: None)
    assert result.ok
    rgb, masks = make_sequence(SynthConfig(frames=24, objects=2))
    rgb = (rgb + rgb[::-1]) * 2  # 96 frames: long enough to screenshot a running window
    for name, frames in (("clip.mp4", rgb), ("long.mp4", rgb * 4)):
        writer = cv2.VideoWriter(str(out / name), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
    write_indexed_png(out / "first.png", masks[0])
    boxes = []
    for i in (1, 2):
        ys, xs = np.nonzero(masks[0] == i)
        boxes.append(f"{i}:{xs.min()},{ys.min()},{xs.max() - xs.min() + 1},{ys.max() - ys.min() + 1}")
    return Clip(result.artifacts[0].path, out / "clip.mp4", out / "long.mp4", out / "first.png", boxes, len(rgb), rgb)


def app(script: Path, *args, env: dict | None = None, timeout: float = 180, cwd=None) -> subprocess.CompletedProcess:
    """Run an app to completion with this interpreter; no DISPLAY unless `env` gives one."""
    base = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})}, cwd=cwd)


def video_info(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) as OpenCV reads the file back."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot read back {path}"
    info = tuple(int(cap.get(p)) for p in (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH,
                                           cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return info


# ---------------------------------------------------------------- headless


def test_track_headless_saves_video_and_json(clip, tmp_path):
    out, jsonl = tmp_path / "out.mp4", tmp_path / "tracks.jsonl"
    run = app(TRACK, "--model", clip.model, "--source", clip.video, "--headless", "--box", clip.boxes[0],
              "--box", clip.boxes[1], "--save", out, "--json", jsonl, "--threads", "1")
    assert run.returncode == 0, run.stderr
    assert video_info(out) == (clip.frames, 320, 240)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(clip.frames))
    for record in lines:
        assert set(record) == {"schema_version", "frame", "t", "objects"}
        assert [o["id"] for o in record["objects"]] == [1, 2]
        for o in record["objects"]:
            assert set(o) == {"id", "box", "area", "confidence", "lost"} and 0 <= o["confidence"] <= 1
            if o["box"] is not None:
                x, y, w, h = o["box"]
                assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 320 and y + h <= 240
    first = {o["id"]: o for o in lines[0]["objects"]}
    for text in clip.boxes:  # the first frame's boxes lie inside the given ones (refinement only shrinks)
        i, (x, y, w, h) = int(text.split(":")[0]), map(int, text.split(":")[1].split(","))
        bx, by, bw, bh = first[i]["box"]
        assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= y + h and not first[i]["lost"]
    assert "FPS end to end" in run.stderr and "backbone" in run.stderr


def test_track_mask_init_and_max_frames(clip, tmp_path):
    from edgedino.track.palette import read_indexed_png

    jsonl = tmp_path / "tracks.jsonl"
    run = app(TRACK, "--model", clip.model, "--source", clip.video, "--headless", "--mask", clip.mask,
              "--json", jsonl, "--max-frames", 5)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 5
    mask = read_indexed_png(clip.mask)
    assert {o["id"]: o["area"] for o in lines[0]["objects"]} == {1: int((mask == 1).sum()), 2: int((mask == 2).sum())}


def test_features_headless_saves_side_by_side(clip, tmp_path):
    out = tmp_path / "pca.mp4"
    run = app(FEATURES, "--model", clip.model, "--source", clip.video, "--headless", "--save", out,
              "--max-frames", 7)
    assert run.returncode == 0, run.stderr
    frames, width, height = video_info(out)
    assert (frames, height) == (7, 240) and width == 320 + 8 + 240  # frame | gap | 7x7 PCA scaled to 240 high
    assert "7 frames" in run.stderr and "pca" in run.stderr


def test_track_on_an_image_folder(clip, tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(clip.rgb[:6]):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    jsonl = tmp_path / "tracks.jsonl"
    run = app(TRACK, "--model", clip.model, "--source", folder, "--headless", "--mask", clip.mask, "--json", jsonl)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == list(range(6))


def test_track_runs_a_pytorch_checkpoint_when_torch_is_here(clip, tmp_path):
    from edgedino.checkpoints import load_backbone, save_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_backbone(load_backbone(None, "vit_test"), tmp_path / "vit_test.pth")
    jsonl = tmp_path / "tracks.jsonl"
    run = app(TRACK, "--model", tmp_path / "vit_test.pth", "--source", clip.video, "--headless", "--box", clip.boxes[0],
              "--json", jsonl, "--max-frames", 3, "--short-side", 112)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == [0, 1, 2]


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.onnx"], "artifact not found"),
    (["--box", "10,10,0,20"], "zero width or height"),
    (["--box", "ten,10,20,20"], "is not x,y,w,h"),
    (["--box", "300,200,50,50"], "is not inside the 320x240 frame"),
    ([], "--headless needs --box or --mask"),
    (["--source", "nowhere.mp4", "--box", "1,1,9,9"], "source not found"),
])
def test_track_bad_input_is_a_clear_error(clip, tmp_path, args, message):
    flags = {"--model": clip.model, "--source": clip.video}
    for i in range(0, len(args), 2):
        flags.pop(args[i], None)
    out = tmp_path / "out.mp4"
    run = app(TRACK, *[v for kv in flags.items() for v in kv], *args, "--headless", "--save", out)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unreadable_video_is_a_clear_error(clip, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    run = app(TRACK, "--model", clip.model, "--source", bad, "--headless", "--box", "1,1,9,9")
    assert run.returncode == 2 and "cannot read video" in run.stderr and "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize("display", [None, ":987"], ids=["unset", "no-server"])
@pytest.mark.parametrize("script,hint", [(TRACK, " (with --box or --mask)"), (FEATURES, "")], ids=["track", "features"])
def test_no_display_says_use_headless(clip, display, script, hint):
    """Without --headless and without an X server, a one-line answer and exit 2, not Qt's abort (exit 134)."""
    run = app(script, "--model", clip.model, "--source", clip.video, env={"DISPLAY": display} if display else None)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith(f"error: no display: use --headless{hint}") and len(run.stderr.splitlines()) == 1


def test_summary_says_when_every_object_was_lost(clip, tmp_path):
    """A red square that stays is tracked to the end; one on the first frame only is lost on frame 1, and the
    summary says so."""
    import cv2

    for name, frames_with_square in (("stays", range(6)), ("goes", [0])):
        frames = tmp_path / name
        frames.mkdir()
        for i in range(6):
            grey = np.full((240, 320, 3), 120, np.uint8)
            if i in frames_with_square:
                grey[80:160, 100:180] = (0, 0, 255)
            cv2.imwrite(str(frames / f"{i:03d}.png"), grey)
    kept = app(TRACK, "--model", clip.model, "--source", tmp_path / "stays", "--headless", "--box", "100,80,80,80")
    assert kept.returncode == 0 and "every object was lost" not in kept.stderr, kept.stderr
    run = app(TRACK, "--model", clip.model, "--source", tmp_path / "goes", "--headless", "--box", "100,80,80,80")
    assert run.returncode == 0, run.stderr
    assert "every object was lost from frame 1 to the end" in run.stderr


# ---------------------------------------------------------------- sources that fail


class StreamServer:
    """A local HTTP server: MJPEG frames on the first connection (then it stalls, connection open), nothing at all
    (connection open, no reply) on every later one: a camera stream that dies mid-way, or one dead from the start."""

    def __init__(self, jpegs: list[bytes]):
        self.jpegs, self.conns = list(jpegs), []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/cam.mjpg"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            jpegs, self.jpegs = self.jpegs, []
            threading.Thread(target=self._serve, args=(conn, jpegs), daemon=True).start()

    def _serve(self, conn: socket.socket, jpegs: list[bytes]) -> None:
        try:
            conn.recv(65536)
            if not jpegs:
                return
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for jpg in jpegs:
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                conn.sendall(part + jpg + b"\r\n")
                time.sleep(0.03)
        except OSError:
            pass

    def close(self) -> None:
        for c in [self.sock, *self.conns]:
            c.close()


def failing_run(clip, source: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    jsonl = tmp_path / "tracks.jsonl"
    t0 = time.monotonic()
    run = app(TRACK, "--model", clip.model, "--source", source, "--headless", "--box", clip.boxes[0],
              "--json", jsonl, *FAIL_FAST, timeout=60)
    assert "Traceback" not in run.stderr, run.stderr
    return run, time.monotonic() - t0


@pytest.mark.parametrize("source", ["7", "rtsp://127.0.0.1:9/nothing-listens-here"])
def test_missing_camera_or_dead_url_exits_with_a_message(clip, tmp_path, source):
    run, seconds = failing_run(clip, source, tmp_path)
    assert run.returncode == 2 and "cannot read" in run.stderr and "gave up after 1 retries" in run.stderr
    assert "WARN" not in run.stderr and "VIDEOIO" not in run.stderr, run.stderr  # OpenCV's own probe log is silenced
    assert seconds < 45 and not (tmp_path / "tracks.jsonl").exists()


def test_silent_stream_times_out(clip, tmp_path):
    server = StreamServer([])
    try:
        run, seconds = failing_run(clip, server.url, tmp_path)
    finally:
        server.close()
    assert run.returncode == 2 and "no frame from" in run.stderr and "reopening (1/1)" in run.stderr, run.stderr
    assert seconds < 45


def test_stream_that_stalls_mid_way_ends_cleanly(clip, tmp_path):
    import cv2

    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in clip.rgb[:12]]
    server = StreamServer(jpegs)
    try:
        run, seconds = failing_run(clip, server.url, tmp_path)
    finally:
        server.close()
    assert run.returncode == 1 and "gave up after 1 retries" in run.stderr and "FPS end to end" in run.stderr
    lines = (tmp_path / "tracks.jsonl").read_text().splitlines()
    assert 1 <= len(lines) <= 12 and seconds < 45  # a live source keeps only the newest frame: some may be skipped


# ---------------------------------------------------------------- in a window, under Xvfb


@pytest.fixture(scope="module")
def display():
    """A private X server (Xvfb) for the apps' windows; its display name."""
    if not all(shutil.which(tool) for tool in ("Xvfb", "xwd", "xdotool")):
        pytest.skip("Xvfb, xwd or xdotool is not installed (make install adds them with apt: xvfb x11-apps xdotool)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x600x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        name = f":{f.readline().strip()}"
    yield name
    server.terminate()
    server.wait(10)


def screenshot(display: str) -> np.ndarray:
    """The whole X screen as RGB uint8, read from xwd's dump (ZPixmap, 24 or 32 bits per pixel)."""
    for _ in range(5):  # xwd fails now and then while a window is being mapped (BadColor): try again
        grab = subprocess.run(["xwd", "-root", "-silent"], capture_output=True, timeout=30,
                              env={**os.environ, "DISPLAY": display})
        if grab.returncode == 0:
            break
        time.sleep(0.2)
    assert grab.returncode == 0, grab.stderr
    data = grab.stdout
    h = struct.unpack(">25I", data[:100])
    header, width, height, order, bpp, stride, ncolors = h[0], h[4], h[5], h[7], h[11], h[12], h[19]
    assert bpp in (24, 32), f"xwd gave {bpp} bits per pixel"
    start = header + 12 * ncolors
    rows = np.frombuffer(data[start:start + stride * height], np.uint8).reshape(height, stride)
    raw = rows[:, :width * bpp // 8].reshape(height, width, bpp // 8).astype(np.uint32)
    shifts = 8 * np.arange(bpp // 8) if order == 0 else 8 * np.arange(bpp // 8)[::-1]  # LSB first, or MSB first
    px = (raw << shifts.astype(np.uint32)).sum(-1)
    channels = [(px & mask) >> (int(mask).bit_length() - 8) for mask in h[14:17]]
    return np.stack(channels, axis=-1).astype(np.uint8)


def window_box(screen: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of what is drawn on the otherwise black screen, or None while nothing is."""
    ys, xs = np.nonzero(screen.max(-1) > 0)
    if len(xs) < 10_000:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def snapshot_on_screen(script: Path, args: list, display: str, cwd: Path, title: str, pattern: str):
    """Run an app in a window, pause it with space, save a snapshot with s, screenshot, quit with q.

    Returns the app's result, the screenshot (RGB) and the snapshot (RGB) with its frame index."""
    import cv2

    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    key = lambda *k: subprocess.run(["xdotool", *k], env=env, check=True, timeout=30)  # noqa: E731
    try:
        # Map the window again once it exists, as a window manager would: on a bare X server Qt sometimes misses
        # its first Expose event and then never paints (seen here about one run in five).
        key("search", "--sync", "--name", f"^{title}$", "windowunmap", "--sync", "windowmap", "--sync")
        deadline, box = time.monotonic() + 120, None
        while box is None and proc.poll() is None and time.monotonic() < deadline:
            box = window_box(screenshot(display))
        if box is None:
            screen = screenshot(display)
            pytest.fail(f"no window appeared ({int((screen.max(-1) > 0).sum())} lit pixels): "
                        f"{proc.communicate(timeout=60)}")
        key("mousemove", str(box[0] + box[2] // 2), str(box[1] + box[3] // 2))  # focus follows the pointer
        key("key", "space")
        time.sleep(0.5)
        key("key", "s")
        while not list(cwd.glob(pattern)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        snaps = list(cwd.glob(pattern))
        assert len(snaps) == 1, f"expected one snapshot, found {snaps}"
        screen = screenshot(display)
        key("key", "q")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    snap = cv2.cvtColor(cv2.imread(str(snaps[0])), cv2.COLOR_BGR2RGB)
    index = int(snaps[0].stem.split("_")[-1])
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), screen, snap, index


def located(screen: np.ndarray, image: np.ndarray) -> float:
    """Mean absolute difference where `image` best matches the screen (0 when it is shown there pixel for pixel)."""
    import cv2

    scores = cv2.matchTemplate(screen, image, cv2.TM_SQDIFF)
    y, x = np.unravel_index(np.argmin(scores), scores.shape)
    h, w = image.shape[:2]
    return float(np.abs(screen[y:y + h, x:x + w].astype(int) - image).mean())


def decoded_frame(video: Path, index: int) -> np.ndarray:
    """Frame `index` of a video as the apps read it (RGB, after the codec)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    for _ in range(index + 1):
        ok, bgr = cap.read()
        assert ok
    cap.release()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_track_window_shows_the_overlay(clip, display, tmp_path):
    from edgedino.track.draw import LOST_BGR, id_colour

    jsonl = tmp_path / "tracks.jsonl"
    run, screen, snap, index = snapshot_on_screen(
        TRACK, ["--model", clip.model, "--source", clip.long_video, "--box", clip.boxes[0], "--box", clip.boxes[1],
                "--json", jsonl], display, tmp_path, "edgedino track", "snapshot_*.png")
    assert run.returncode == 0 and "saved snapshot_" in run.stderr, run.stderr
    assert located(screen, snap) < 1.0  # what the app saved is what the window showed
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == index + 1 < 4 * clip.frames  # paused and quit on that frame, before the video's end
    plain = decoded_frame(clip.long_video, index)
    changed = np.abs(snap.astype(int) - plain).max(-1) > 40
    assert changed[8:24, 8:60].sum() > 50  # "NN.N FPS" text in the top left
    for obj in records[-1]["objects"]:  # each object's label (and box, if it has one) in its colour, red when lost
        colour = np.array((LOST_BGR if obj["lost"] else id_colour(obj["id"]))[::-1])
        assert (snap == colour).all(-1).sum() > (plain == colour).all(-1).sum() + 15, obj
        if obj["box"] is not None:
            x, y, w, h = obj["box"]
            edges = [snap[y, x:x + w], snap[y + h - 1, x:x + w], snap[y:y + h, x], snap[y:y + h, x + w - 1]]
            assert (np.concatenate(edges) == colour).all(-1).mean() > 0.5, obj


def test_features_window_shows_frame_and_pca(clip, display, tmp_path):
    run, screen, snap, index = snapshot_on_screen(FEATURES, ["--model", clip.model, "--source", clip.long_video],
                                                  display, tmp_path, "edgedino features", "features_*.png")
    assert run.returncode == 0, run.stderr
    assert located(screen, snap) < 1.0 and snap.shape == (240, 320 + 8 + 240, 3)
    assert (snap[40:, 320:328] == 255).all()  # the white gap between the frame and the PCA picture
    plain = decoded_frame(clip.long_video, index)
    assert np.abs(snap[40:, :320].astype(int) - plain[40:]).mean() < 1.0  # the frame itself, below the caption
    pca = snap[40:, 328:].reshape(-1, 3)
    assert len(np.unique(pca, axis=0)) > 20  # a 7x7 grid of feature colours, not a blank


@pytest.mark.parametrize("mode", ["box", "points"])
def test_track_window_init_by_mouse(clip, display, tmp_path, mode):
    """No --box: the user drags a box (cv2.selectROIs: Enter, then Esc) or clicks points (Enter) on the first frame."""
    env = {**os.environ, "DISPLAY": display}
    jsonl = tmp_path / "tracks.jsonl"
    proc = subprocess.Popen([sys.executable, str(TRACK), "--model", str(clip.model), "--source", str(clip.video),
                             "--init", mode, "--max-frames", "5", "--json", str(jsonl)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    xdo = lambda *k: subprocess.run(["xdotool", *map(str, k)], env=env, check=True, timeout=60)  # noqa: E731
    try:
        xdo("search", "--sync", "--name", "^edgedino track$", "windowunmap", "--sync", "windowmap", "--sync")
        deadline, box = time.monotonic() + 60, None
        while box is None and time.monotonic() < deadline:
            box = window_box(screenshot(display))
        assert box is not None
        x0, y0 = box[:2]
        bx, by, bw, bh = map(int, clip.boxes[1].split(":")[1].split(","))
        if mode == "box":
            xdo("mousemove", x0 + bx, y0 + by, "mousedown", 1)
            for step in range(1, 5):
                xdo("mousemove", x0 + bx + bw * step // 4, y0 + by + bh * step // 4)
            xdo("mouseup", 1)
            time.sleep(0.3)
            xdo("key", "Return")
            time.sleep(0.3)
            xdo("key", "Escape")
        else:
            for dx, dy in ((0.5, 0.5), (0.4, 0.6)):
                xdo("mousemove", x0 + bx + int(bw * dx), y0 + by + int(bh * dy), "click", 1)
                time.sleep(0.2)
            xdo("key", "Return")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    first = json.loads(jsonl.read_text().splitlines()[0])["objects"]
    assert [o["id"] for o in first] == [1] and first[0]["box"] is not None
    x, y, w, h = first[0]["box"]
    if mode == "box":  # the dragged box, refined inside itself: its centre lies inside the object's true box
        assert bx <= x + w / 2 <= bx + bw and by <= y + h / 2 <= by + bh, (first[0], clip.boxes[1])
    else:  # grown from the clicked patches (how far depends on the features: random weights here), so it meets
        assert x < bx + bw and bx < x + w and y < by + bh and by < y + h, (first[0], clip.boxes[1])  # the object


@pytest.mark.parametrize("app", ["track", "features", "classify", "segment"])
def test_every_app_runs_numpy_blas_on_one_thread(app):
    """Set by edgedino.apps before numpy loads (numpy reads it once): each app's own numpy work stays on one core."""
    code = f"import edgedino.apps.{app}, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "1", out
