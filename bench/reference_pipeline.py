#!/usr/bin/env python3
"""Python reference for `facedetect ! facematch`: OpenCV decode, onnxruntime YuNet-n (same
640 px input), the same 5-point alignment, MobileFaceNet, numpy matching against a gallery,
on every face of every frame. Used by `sightline bench facematch` as the baseline.

    scripts/setup   # the pinned packages in .deps/bench-python ($SIGHTLINE_BENCH_PYTHON)
    .deps/bench-python/bin/python bench/reference_pipeline.py VIDEO GALLERY_PHOTO [REPEAT [THRESHOLD]]
Prints one JSON line: frames, faces, recognised (frames on which a face matched the gallery
photo's person at cosine >= THRESHOLD, default 0.48: MobileFaceNet's calibrated threshold in
models/models.toml), seconds, frames_per_s, max_rss_kb.
"""
import json
import os
import resource
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

SHARED = os.environ.get("SIGHTLINE_SHARED", os.path.join(os.path.dirname(__file__), "../../shared"))
sys.path.insert(0, os.path.join(SHARED, "models"))
import reference_decode as rd  # noqa: E402

# Same threading as the product's shared pool: all cores, no spinning.
_opts = ort.SessionOptions()
_opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
_orig = rd._session
rd._session = lambda name: ort.InferenceSession(os.path.join(rd.HERE, name), _opts, providers=["CPUExecutionProvider"])


def main():
    video, photo = sys.argv[1], sys.argv[2]
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    threshold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.48
    det = rd.YuNet()
    emb = rd.FaceEmbedder("face_recognition_mobilefacenet_192d.onnx")
    ref = cv2.imread(photo)
    d = det.detect(ref, 0.75, 0.3, scale=min(1.0, 640 / ref.shape[1]))
    gallery = np.stack([emb(rd.align_112(ref, d[0][4:14]))])
    frames = faces = recognised = 0
    t = time.perf_counter()
    for _ in range(repeat):
        cap = cv2.VideoCapture(video)
        while True:
            ok, im = cap.read()
            if not ok:
                break
            frames += 1
            dets = det.detect(im, 0.75, 0.3, scale=640 / im.shape[1])
            known = False
            for f in dets:
                e = emb(rd.align_112(im, f[4:14]))
                sims = gallery @ e
                best, sim = int(np.argmax(sims)), float(sims.max())
                known = known or (best == 0 and sim >= threshold)
                faces += 1
            recognised += known
    secs = time.perf_counter() - t
    print(json.dumps({"frames": frames, "faces": faces, "recognised": recognised, "seconds": secs, "frames_per_s": frames / secs,
                      "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
