#!/usr/bin/python3
"""Reads the `facedetect` bus messages with PyGObject, as an integrator would.

usage: read_messages.py VIDEO [PROPERTY=VALUE ...]
  -> one JSON object per message: frame, scan, searched, faces (count), the first face's box
"""
import json
import sys
import warnings

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

# GValueArray (what PyGObject gives for a GstValueList) is deprecated in GLib, not in GStreamer.
warnings.filterwarnings("ignore", category=DeprecationWarning)
Gst.init(None)
video, props = sys.argv[1], " ".join(sys.argv[2:])
pipeline = Gst.parse_launch(
    f'filesrc location="{video}" ! decodebin ! videoconvert ! '
    f"sightlinefacedetect {props} ! fakesink"
)
bus = pipeline.get_bus()
pipeline.set_state(Gst.State.PLAYING)
while True:
    msg = bus.timed_pop_filtered(
        60 * Gst.SECOND,
        Gst.MessageType.ELEMENT | Gst.MessageType.EOS | Gst.MessageType.ERROR,
    )
    if msg is None:
        sys.exit("no EOS within 60 s")
    if msg.type == Gst.MessageType.ERROR:
        err, debug = msg.parse_error()
        sys.exit(f"error: {err.message}")
    if msg.type == Gst.MessageType.EOS:
        break
    s = msg.get_structure()
    if s is None or s.get_name() != "facedetect":
        continue
    # A GstValueList: PyGObject reads it as a GValueArray (gst_structure_get_list).
    # (The array owns the structures: it is kept while they are read.)
    ok, array = s.get_list("faces")
    faces = [array.get_nth(i) for i in range(array.n_values)] if ok else []
    row = {
        "frame": s.get_value("frame"),
        "scan": s.get_string("scan"),
        "searched": s.get_double("searched")[1],
        "faces": len(faces),
    }
    if faces:
        row["box"] = [faces[0].get_uint(k)[1] for k in ("x", "y", "width", "height")]
    print(json.dumps(row))
pipeline.set_state(Gst.State.NULL)
