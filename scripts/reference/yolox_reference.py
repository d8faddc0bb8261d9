#!/usr/bin/env python3
"""Writes core/tests/fixtures/yolox_reference.json: YOLOX-nano persons on real photos as
computed by shared/models/reference_decode.py, at an input of 640 px wide whose height is the
photo's own aspect (so that both sides see the same tensor: no extra letterbox rows).

    python3 scripts/reference/yolox_reference.py > core/tests/fixtures/yolox_reference.json
Rows: x1, y1, x2, y2, score.
"""
import json
import os
import sys

import cv2

SHARED = os.environ.get("SIGHTLINE_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
sys.path.insert(0, os.path.join(SHARED, "models"))
from reference_decode import YoloxNano  # noqa: E402

out = {}
# (t1.jpg is left out: six overlapping people, where a few levels of JPEG-decoder difference
# change which of two near-equal boxes NMS keeps.)
for path in ["faces/misc/astronaut.png", "faces/face_recognition_examples/group/two_people.jpg"]:
    im = cv2.imread(os.path.join(SHARED, "data", path))
    h, w = im.shape[:2]
    scale = 640 / w
    th = ((int(h * scale) + 31) // 32) * 32
    det = YoloxNano(size=(th, 640))
    d = det.detect(im, 0.3, 0.45)
    out[path] = {"width": w, "height": h, "tensor": [640, th],
                 "persons": [[round(float(v), 3) for v in row[:5]] for row in d]}
print(json.dumps(out, indent=1))
