#!/usr/bin/env python3
"""Writes core/tests/fixtures/yunet_reference.json: YuNet-n faces on real photos as computed by
shared/models/reference_decode.py (numpy + onnxruntime + OpenCV), for the Rust port's test.

    pip install onnxruntime==1.31.1 numpy opencv-python-headless
    python3 scripts/reference/yunet_reference.py > core/tests/fixtures/yunet_reference.json
Rows: x1, y1, x2, y2, 5 landmarks (x, y), score.
"""
import json
import os
import sys

import cv2

SHARED = os.environ.get("SIGHTLINE_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
sys.path.insert(0, os.path.join(SHARED, "models"))
from reference_decode import YuNet  # noqa: E402

det = YuNet()
out = {}
# PNG photos decode to identical pixels everywhere (a precise check of the port); JPEG group
# photos check face counts and boxes within the differences of two JPEG decoders.
for path, scale in [("faces/misc/astronaut.png", 1.0), ("faces/misc/astronaut.png", 0.6),
                    ("faces/misc/Tom_Hanks_54745.png", 1.0),
                    ("faces/misc/t1.jpg", 1.0), ("faces/bbt_faceapi/group/bbt3.jpg", 1.0),
                    ("faces/deepface/group/couple.jpg", 640 / 2280)]:
    im = cv2.imread(os.path.join(SHARED, "data", path))
    d = det.detect(im, 0.6, 0.3, scale=scale)
    out["%s@%g" % (path, scale)] = {"path": path, "scale": scale, "width": im.shape[1], "height": im.shape[0],
                 "faces": [[round(float(v), 3) for v in row] for row in d]}
print(json.dumps(out, indent=1))
