#!/usr/bin/env python3
"""The seed-style peer of `sightline bench capacity`: one OpenCV VideoCapture process per
camera (FFmpeg decodes every frame; RATE frames/s go on), feeding one shared inference
process (this one) with the models, detection, alignment, embedding and matching of
reference_pipeline.py. A full queue drops the frame (as the leaky queue of our pipeline).

    .deps/bench-python/bin/python bench/capacity_peer.py URL N RATE HOLD GALLERY_PHOTO

After every camera analysed a frame and 5 s more, counts over HOLD seconds. Prints one JSON
line: frames/s read (decoded) and analysed per camera, CPU (cores, every process), RSS (MiB,
every process).
"""
import json
import multiprocessing as mp
import os
import queue
import sys
import time

# RTSP over TCP (FFmpeg's UDP default loses packets of a 1080p stream under load).
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

import reference_pipeline  # noqa: E402,F401  (the same ONNX Runtime session options)
from reference_pipeline import rd  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def capture(url, cam, rate, frames, read):
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    every = max(1, round(fps / rate))
    n = 0
    while True:
        ok, im = cap.read()
        if not ok:
            time.sleep(0.1)
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
            continue
        n += 1
        with read.get_lock():
            read[cam] += 1
        if n % every == 0:
            try:
                frames.put_nowait((cam, im))
            except queue.Full:
                pass


def proc_stat(pid):
    """(CPU seconds, RSS MiB) of a process from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        cpu = (int(rest[11]) + int(rest[12])) / HZ
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        return cpu, rss
    except (OSError, StopIteration, IndexError, ValueError):
        return 0.0, 0.0


def main():
    url, n, rate, hold, photo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    # The capture processes first (forked before any model or thread exists here).
    frames = mp.Queue(maxsize=2 * n)
    read = mp.Array("q", n)
    procs = [mp.Process(target=capture, args=(url, k, rate, frames, read), daemon=True) for k in range(n)]
    for p in procs:
        p.start()
    det = rd.YuNet()
    emb = rd.FaceEmbedder("face_recognition_mobilefacenet_192d.onnx")
    ref = cv2.imread(photo)
    d = det.detect(ref, 0.75, 0.3, scale=min(1.0, 640 / ref.shape[1]))
    gallery = np.stack([emb(rd.align_112(ref, d[0][4:14]))])
    pids = [os.getpid()] + [p.pid for p in procs]
    analysed = [0] * n
    phase, t_mark, start = "warm", time.monotonic() + 60 + 5 * n, None
    while True:
        try:
            cam, im = frames.get(timeout=0.5)
            dets = det.detect(im, 0.75, 0.3, scale=640 / im.shape[1])
            for f in dets:
                e = emb(rd.align_112(im, f[4:14]))
                sims = gallery @ e
                _ = int(np.argmax(sims)), float(sims.max())
            analysed[cam] += 1
        except queue.Empty:
            pass
        now = time.monotonic()
        if phase == "warm":
            if all(analysed):
                phase, t_mark = "settle", now + 5
            elif now > t_mark:
                print(json.dumps({"error": f"not every camera delivered within {60 + 5 * n} s"}))
                return
        elif phase == "settle" and now >= t_mark:
            phase, t_mark = "hold", now + hold
            start = (now, list(read), list(analysed), [proc_stat(p)[0] for p in pids])
        elif phase == "hold" and now >= t_mark:
            dt = now - start[0]
            stats = [proc_stat(p) for p in pids]
            print(json.dumps({
                "read_fps": [(b - a) / dt for a, b in zip(start[1], list(read))],
                "analysed_fps": [(b - a) / dt for a, b in zip(start[2], analysed)],
                "cpu": sum(s[0] for s in stats) / dt - sum(start[3]) / dt,
                "rss_mib": sum(s[1] for s in stats),
            }), flush=True)
            return


if __name__ == "__main__":
    main()
