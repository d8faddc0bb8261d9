#!/usr/bin/python3
"""Reads reidmap's metadata with PyGObject, as an integrator would: the map-position and
object_id params of person ROIs, and the reidmap / reidmap-trajectory bus messages.

usage: read_map.py VIDEO CALIBRATION FRAMES   -> one JSON object per line
"""
import json
import sys
import warnings

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)  # GObject.ValueArray.get_nth
Gst.init(None)
video, calibration, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
pipeline = Gst.parse_launch(
    f'filesrc location="{video}" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! '
    f"identity eos-after={frames} ! persondetect inference-width=480 ! "
    f'reidmap camera=py map=py calibration="{calibration}" post-interval=0 ! '
    "appsink name=sink sync=false"
)
sink = pipeline.get_by_name("sink")
bus = pipeline.get_bus()
pipeline.set_state(Gst.State.PLAYING)
api = GstVideo.VideoRegionOfInterestMeta.get_info().api


def structures(s, field):
    """The structures of a GstValueList field (copies: they outlive the array)."""
    ok, arr = s.get_list(field)
    return [arr.get_nth(i).copy() for i in range(arr.n_values)] if ok else []


while True:
    sample = sink.emit("pull-sample")
    if sample is None:
        break
    buf = sample.get_buffer()
    rt = sample.get_segment().to_running_time(Gst.Format.TIME, buf.pts)
    for i in range(buf.get_n_meta(api)):
        meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, i)
        mp = meta.get_param("map-position")
        if mp is None:
            continue
        print(json.dumps({
            "roi": GLib.quark_to_string(meta.roi_type),
            "running-time": rt,
            "track": meta.get_param("object_id").get_int("id")[1],
            "global-id": mp.get_int64("global-id")[1],
            "map": mp.get_string("map"),
            "x": mp.get_double("x")[1],
            "y": mp.get_double("y")[1],
        }))
# Messages (the bus is read before NULL flushes it).
while True:
    msg = bus.pop()
    if msg is None:
        break
    s = msg.get_structure()
    if msg.type != Gst.MessageType.ELEMENT or s is None:
        continue
    if s.get_name() == "reidmap":
        print(json.dumps({
            "message": "reidmap",
            "running-time": s.get_uint64("running-time")[1],
            "units": s.get_string("units"),
            "people": [{
                "track": p.get_uint64("track-id")[1],
                "global-id": p.get_uint64("global-id")[1],
                "x": p.get_double("x")[1],
            } for p in structures(s, "people")],
        }))
    elif s.get_name() == "reidmap-trajectory":
        points = structures(s, "points")
        print(json.dumps({
            "message": "reidmap-trajectory",
            "track": s.get_uint64("track-id")[1],
            "global-id": s.get_uint64("global-id")[1],
            "reason": s.get_string("reason"),
            "points": [[p.get_uint64("running-time")[1], p.get_double("x")[1],
                        p.get_double("y")[1]] for p in points],
        }))
pipeline.set_state(Gst.State.NULL)
