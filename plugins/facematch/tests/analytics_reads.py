#!/usr/bin/python3
"""Reads facedetect ! facematch's GstAnalytics metadata with PyGObject (GStreamer >= 1.24),
as an upstream or DL Streamer 2026 application does: each face's object-detection Mtd, its
related classification (the recognised name) and tracking (the track id), paired with the ROI
meta of the same id.

usage: analytics_reads.py IMAGE GALLERY   -> one JSON object per object-detection Mtd
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstAnalytics", "1.0")
from first_frame import first_frame  # noqa: E402
from gi.repository import GLib, Gst, GstAnalytics, GstVideo  # noqa: E402

pipeline, buf = first_frame(sys.argv[1], sys.argv[2])
rmeta = GstAnalytics.buffer_get_analytics_relation_meta(buf)
assert rmeta is not None, "no GstAnalyticsRelationMeta on the buffer"
relate = GstAnalytics.RelTypes.RELATE_TO
n = GstAnalytics.relation_get_length(rmeta)
mtds = {}
for i in range(n):
    for kind, get in (("od", rmeta.get_od_mtd), ("cls", rmeta.get_cls_mtd),
                      ("trk", rmeta.get_tracking_mtd)):
        ok, m = get(i)
        if ok:
            mtds[i] = (kind, m)
rois = {}
api = GstVideo.VideoRegionOfInterestMeta.get_info().api
for i in range(buf.get_n_meta(api)):
    roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, i)
    rec = roi.get_param("recognition")
    rois[roi.id] = {
        "rect": [roi.x, roi.y, roi.w, roi.h],
        "object_id": roi.get_param("object_id").get_int("id")[1],
        "label": rec.get_string("label") if rec else None,
    }
for i, (kind, od) in sorted(mtds.items()):
    if kind != "od":
        continue
    ok, x, y, w, h, conf = od.get_location()
    related = [j for j, (k, _) in mtds.items() if rmeta.get_relation(od.id, j) == relate]
    names = [GLib.quark_to_string(mtds[j][1].get_quark(0)) for j in related if mtds[j][0] == "cls"]
    levels = [mtds[j][1].get_level(0) for j in related if mtds[j][0] == "cls"]
    tracks = [mtds[j][1].get_info()[1] for j in related if mtds[j][0] == "trk"]
    print(json.dumps({
        "id": od.id,
        "type": GLib.quark_to_string(od.get_obj_type()),
        "box": [x, y, w, h],
        "confidence": conf,
        "classes": names,
        "levels": levels,
        "tracks": tracks,
        "roi": rois.get(od.id),
    }))
pipeline.set_state(Gst.State.NULL)
