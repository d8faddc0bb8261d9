#!/usr/bin/env python3
"""Writes core/tests/fixtures/align_reference.json: for a few real PNG photos, the YuNet
landmarks, the 2x3 similarity matrix of reference_decode.similarity_transform, a checksum of
the 112x112 aligned crop (align_112), and the cosine similarities of both embedding models on
pairs of those crops.

    python3 scripts/reference/align_reference.py > core/tests/fixtures/align_reference.json
"""
import json
import os
import sys

import cv2
import numpy as np

SHARED = os.environ.get("SIGHTLINE_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
sys.path.insert(0, os.path.join(SHARED, "models"))
from reference_decode import ARCFACE_112, FaceEmbedder, YuNet, align_112, similarity_transform  # noqa: E402

det = YuNet()
out = {"template": ARCFACE_112.tolist(), "photos": {}}
crops = {}
for path in ["faces/misc/astronaut.png", "faces/misc/Tom_Hanks_54745.png"]:
    im = cv2.imread(os.path.join(SHARED, "data", path))
    d = det.detect(im, 0.6, 0.3)
    best = d[np.argmax((d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1]))]
    lm = best[4:14]
    m = similarity_transform(lm.reshape(5, 2).astype(np.float32), ARCFACE_112)
    crop = align_112(im, lm)
    crops[path] = crop
    out["photos"][path] = {
        "landmarks": [round(float(v), 4) for v in lm],
        "matrix": [[round(float(v), 6) for v in row] for row in m],
        "crop_mean_bgr": [round(float(v), 3) for v in crop.reshape(-1, 3).mean(0)],
        "crop_center_bgr": [int(v) for v in crop[56, 56]],
    }
for name in FaceEmbedder.CFG:
    emb = FaceEmbedder(name)
    e = {p: emb(c) for p, c in crops.items()}
    a, b = list(e)
    out.setdefault("embeddings", {})[name] = {
        "cosine_astronaut_tom": round(float(e[a] @ e[b]), 5),
        "first8_astronaut": [round(float(v), 5) for v in e[a][:8]],
    }
print(json.dumps(out, indent=1))
