#!/usr/bin/python3
"""Reads our ROI params the two ways DL Streamer applications do, on one photo.

1. PyGObject with the types DL Streamer uses: `object_id.id` a G_TYPE_INT, the
   `recognition` tensor's `confidence` and `label_id`, the `landmarks` tensor's
   `landmark_points` data (float32 pairs normalised to the box).
2. gstgva's own reads (v2025.1.2, the last release reading GstVideoRegionOfInterestMeta),
   reimplemented here with ctypes as gstgva does them: the ROI meta's params GList, a
   field read by its GType (`Tensor.__getitem__`), `Tensor.data()` from `data_buffer`
   (a GVariant of bytes viewed by `precision`), `RegionOfInterest.object_id()`.

usage: dlstreamer_reads.py IMAGE GALLERY   -> one JSON object per face ROI
"""
import ctypes
import json
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from first_frame import first_frame  # noqa: E402
from gi.repository import GLib, GObject, Gst, GstVideo  # noqa: E402

libgst = ctypes.CDLL("libgstreamer-1.0.so.0")
libgobject = ctypes.CDLL("libgobject-2.0.so.0")
libglib = ctypes.CDLL("libglib-2.0.so.0")


class GList(ctypes.Structure):
    pass


GList._fields_ = [("data", ctypes.c_void_p), ("next", ctypes.POINTER(GList)),
                  ("prev", ctypes.POINTER(GList))]


class RoiMeta(ctypes.Structure):
    # GstVideoRegionOfInterestMeta as gstgva's util.py declares it.
    _fields_ = [("_meta_flags", ctypes.c_int), ("_info", ctypes.c_void_p),
                ("roi_type", ctypes.c_int), ("id", ctypes.c_int), ("parent_id", ctypes.c_int),
                ("x", ctypes.c_int), ("y", ctypes.c_int), ("w", ctypes.c_int), ("h", ctypes.c_int),
                ("_params", ctypes.POINTER(GList))]


libgst.gst_buffer_iterate_meta_filtered.restype = ctypes.c_void_p
libgst.gst_buffer_iterate_meta_filtered.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
libgst.gst_structure_get_field_type.restype = ctypes.c_size_t
libgst.gst_structure_get_field_type.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
libgst.gst_structure_get_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
libgst.gst_structure_get_double.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double)]
libgst.gst_structure_get_string.restype = ctypes.c_char_p
libgst.gst_structure_get_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
libgst.gst_structure_get_value.restype = ctypes.c_void_p
libgst.gst_structure_get_value.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
libgst.gst_structure_get_name.restype = ctypes.c_char_p
libgst.gst_structure_get_name.argtypes = [ctypes.c_void_p]
libgobject.g_value_get_variant.restype = ctypes.c_void_p
libgobject.g_value_get_variant.argtypes = [ctypes.c_void_p]
libglib.g_variant_get_fixed_array.restype = ctypes.c_void_p
libglib.g_variant_get_fixed_array.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t]


class Tensor:
    """gstgva.tensor.Tensor's reads."""

    def __init__(self, structure):
        self.s = structure

    def name(self):
        return libgst.gst_structure_get_name(self.s).decode()

    def __getitem__(self, key):
        key = key.encode()
        gtype = libgst.gst_structure_get_field_type(self.s, key)
        if gtype == hash(GObject.TYPE_INVALID):
            return None
        if gtype == hash(GObject.TYPE_STRING):
            res = libgst.gst_structure_get_string(self.s, key)
            return res.decode() if res else None
        if gtype == hash(GObject.TYPE_INT):
            v = ctypes.c_int()
            return v.value if libgst.gst_structure_get_int(self.s, key, ctypes.byref(v)) else None
        if gtype == hash(GObject.TYPE_DOUBLE):
            v = ctypes.c_double()
            return v.value if libgst.gst_structure_get_double(self.s, key, ctypes.byref(v)) else None
        # gstgva's fallback for other types: the GValue pointer (what a 64-bit id became)
        return ("pointer", libgst.gst_structure_get_value(self.s, key))

    def data(self):
        precision = self["precision"]
        if precision != 10:  # FP32
            return None
        gvalue = libgst.gst_structure_get_value(self.s, b"data_buffer")
        if not gvalue:
            return None
        variant = libgobject.g_value_get_variant(gvalue)
        n = ctypes.c_size_t()
        ptr = libglib.g_variant_get_fixed_array(variant, ctypes.byref(n), 1)
        raw = ctypes.string_at(ptr, n.value)
        return list(struct.unpack("=%df" % (n.value // 4), raw))


def gstgva_rois(buf):
    api = hash(GObject.GType.from_name("GstVideoRegionOfInterestMetaAPI"))
    state = ctypes.c_void_p()
    while True:
        p = libgst.gst_buffer_iterate_meta_filtered(hash(buf), ctypes.byref(state), api)
        if not p:
            return
        roi = ctypes.cast(p, ctypes.POINTER(RoiMeta)).contents
        tensors = {}
        node = roi._params
        while node:
            t = Tensor(node.contents.data)
            tensors[t.name()] = t
            node = node.contents.next
        yield roi, tensors


pipeline, buf = first_frame(sys.argv[1], sys.argv[2])
api = GstVideo.VideoRegionOfInterestMeta.get_info().api
typed = {}
for i in range(buf.get_n_meta(api)):
    meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, i)
    oid = meta.get_param("object_id")
    rec = meta.get_param("recognition")
    lm = meta.get_param("landmarks")
    raw = lm.get_value("data_buffer").get_data_as_bytes().get_data()
    points = struct.unpack("=%df" % (len(raw) // 4), raw)
    typed[meta.id] = {
        "id_is_int": oid.get_field_type("id") == GObject.TYPE_INT,
        "object_id": oid.get_int("id")[1],
        "confidence": rec.get_double("confidence")[1] if rec.has_field("confidence") else None,
        "similarity": rec.get_double("similarity")[1],
        "label_id": rec.get_int("label_id")[1] if rec.has_field("label_id") else None,
        "label": rec.get_string("label"),
        "format": lm.get_string("format"),
        "points": points,
        "pixels": [lm.get_double(f)[1] for n in ("right_eye", "left_eye", "nose", "right_mouth", "left_mouth")
                   for f in (n + "_x", n + "_y")],
        "rect": [meta.x, meta.y, meta.w, meta.h],
    }
for roi, tensors in gstgva_rois(buf):
    row = typed[roi.id]
    det, rec, lm = tensors.get("detection"), tensors.get("recognition"), tensors.get("landmarks")
    row["gstgva"] = {
        "rect": [roi.x, roi.y, roi.w, roi.h],
        "label": GLib.quark_to_string(roi.roi_type),
        "detection_confidence": det["confidence"],
        "object_id": tensors["object_id"]["id"] if "object_id" in tensors else None,
        "recognition_label": rec["label"],
        "recognition_confidence": rec["confidence"],
        "recognition_label_id": rec["label_id"],
        "landmarks_format": lm["format"],
        "landmarks_data": lm.data(),
    }
for i in sorted(typed):
    print(json.dumps(typed[i]))
pipeline.set_state(Gst.State.NULL)
