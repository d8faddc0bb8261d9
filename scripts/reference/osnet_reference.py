#!/usr/bin/env python3
"""Writes core/tests/fixtures/osnet_reference.json: OSNet x0.25 embeddings of person crops of a
real PNG photo, as computed by shared/models/reference_decode.py (first 8 components and the
pairwise cosines).

    python3 scripts/reference/osnet_reference.py > core/tests/fixtures/osnet_reference.json
"""
import json
import os
import sys

import cv2

SHARED = os.environ.get("SIGHTLINE_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
sys.path.insert(0, os.path.join(SHARED, "models"))
from reference_decode import OSNet  # noqa: E402

im = cv2.imread(os.path.join(SHARED, "data", "faces/misc/astronaut.png"))
boxes = [[100, 20, 420, 512], [120, 40, 400, 480], [0, 0, 90, 200]]
crops = [im[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes]
f = OSNet()(crops)
print(json.dumps({"image": "faces/misc/astronaut.png", "boxes": boxes,
                  "first8": [[round(float(v), 5) for v in e[:8]] for e in f],
                  "cosines": {"0-1": round(float(f[0] @ f[1]), 5), "0-2": round(float(f[0] @ f[2]), 5)}}, indent=1))
