#!/usr/bin/python3
"""Reads facematch's params with PyGObject: object_id, recognition, embedding (bytes).

usage: read_recognition.py IMAGE GALLERY   -> one JSON object per face ROI
"""
import json
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from first_frame import first_frame  # noqa: E402
from gi.repository import Gst, GstVideo  # noqa: E402

pipeline, buf = first_frame(sys.argv[1], sys.argv[2], "attach-embedding=true")
api = GstVideo.VideoRegionOfInterestMeta.get_info().api
for i in range(buf.get_n_meta(api)):
    meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, i)
    rec = meta.get_param("recognition")
    emb = meta.get_param("embedding")
    data = emb.get_value("data").get_data()
    vec = struct.unpack("<%df" % (len(data) // 4), data)
    print(json.dumps({
        "id": meta.id,
        "track": meta.get_param("object_id").get_int("id")[1],
        "label": rec.get_string("label"),
        "identity": rec.get_string("identity"),
        "similarity": rec.get_double("similarity")[1],
        "unknown_id": rec.get_string("unknown-id"),
        "dims": emb.get_int("dims")[1],
        "norm": sum(x * x for x in vec) ** 0.5,
    }))
pipeline.set_state(Gst.State.NULL)
