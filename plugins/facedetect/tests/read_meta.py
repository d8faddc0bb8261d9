#!/usr/bin/python3
"""Reads Sightline ROI metas from an appsink with PyGObject, as an integrator would.

usage: read_meta.py IMAGE   -> prints one JSON object per ROI
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

Gst.init(None)
image = sys.argv[1]
pipeline = Gst.parse_launch(
    f'filesrc location="{image}" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! '
    "sightlinefacedetect inference-width=0 ! appsink name=sink"
)
sink = pipeline.get_by_name("sink")
pipeline.set_state(Gst.State.PLAYING)
sample = sink.emit("pull-sample")
buf = sample.get_buffer()
api = GstVideo.VideoRegionOfInterestMeta.get_info().api
n = buf.get_n_meta(api)
for i in range(n):
    meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, i)
    det = meta.get_param("detection")
    lm = meta.get_param("landmarks")
    roi = {
        "id": meta.id,
        "type": GLib.quark_to_string(meta.roi_type),
        "x": meta.x, "y": meta.y, "w": meta.w, "h": meta.h,
        "x_min": det.get_double("x_min")[1],
        "x_max": det.get_double("x_max")[1],
        "confidence": det.get_double("confidence")[1],
        "label": det.get_string("label"),
        "model_name": det.get_string("model_name"),
        "nose_x": lm.get_double("nose_x")[1],
    }
    print(json.dumps(roi))
pipeline.set_state(Gst.State.NULL)
print(json.dumps({"n": n}))
