"""The one helper the facematch Python tests share: a photo through
`sightlinefacedetect ! facematch`, and the first frame's buffer with its metadata."""
import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def first_frame(image, gallery, facematch_props=""):
    """(pipeline, buffer) of `image` recognised against `gallery`; set the pipeline to NULL
    when done with the buffer."""
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f'filesrc location="{image}" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! '
        f'sightlinefacedetect ! facematch gallery="{gallery}" {facematch_props} ! appsink name=sink'
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    return pipeline, sink.emit("pull-sample").get_buffer()
