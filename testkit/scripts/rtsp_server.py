#!/usr/bin/python3
"""A test RTSP camera on 127.0.0.1 (Debian gst-rtsp-server through PyGObject).

usage: rtsp_server.py PORT MOUNT [h264|jpeg] [VIDEO]
       rtsp_server.py PORT MOUNT h264-file STREAM FPS
Serves a live test pattern, or VIDEO looped forever like a live camera, at
rtsp://127.0.0.1:PORT/MOUNT, 320x240 at 10 fps. VIDEO is decoded once into memory and its
frames are pushed on a 100 ms timer, so the stream never ends and never jumps.

h264-file: STREAM is an H.264 byte stream (its first frame a key frame) served as it is, at
its own resolution, GOP and bitrate: its access units are read once into memory and sent at
FPS, looped forever, without decoding or encoding (the capacity benchmark's cameras). All
clients of the mount share the one stream, as viewers of one camera do.
"""
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, mount = sys.argv[1], sys.argv[2]
codec = sys.argv[3] if len(sys.argv) > 3 else "h264"
caps = "video/x-raw,format=I420,width=320,height=240,framerate=10/1"


def buffers(desc, what):
    """Every buffer that the pipeline `desc` (ending in `appsink name=s`) gives, in order."""
    p = Gst.parse_launch(desc)
    sink = p.get_by_name("s")
    p.set_state(Gst.State.PLAYING)
    out = []
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        out.append(buf.extract_dup(0, buf.get_size()))
    p.set_state(Gst.State.NULL)
    if not out:
        sys.exit(f"no {what}")
    return out


def decode(path):
    """Every frame of `path` at 320x240 I420, 10 fps."""
    return buffers(
        f'filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! videorate ! '
        f"{caps} ! appsink name=s sync=false",
        f"frame decoded from {path}",
    )


def access_units(path):
    """The access units of an H.264 byte stream, in order."""
    return buffers(
        f'filesrc location="{path}" ! h264parse ! '
        "video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=s sync=false",
        f"H.264 access unit in {path}",
    )


fps = 10
if codec == "h264-file":
    fps = int(sys.argv[5])
    frames = access_units(sys.argv[4])
    src = (
        "appsrc name=cam is-live=true do-timestamp=true format=time "
        f'caps="video/x-h264,stream-format=byte-stream,alignment=au,framerate={fps}/1"'
    )
    enc = "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1"
elif codec == "jpeg":
    enc = "jpegenc ! rtpjpegpay name=pay0 pt=26"
else:
    enc = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1"

if codec == "h264-file":
    pass
elif len(sys.argv) > 4:
    frames = decode(sys.argv[4])
    src = f'appsrc name=cam is-live=true do-timestamp=true format=time caps="{caps}"'
else:
    frames = None
    src = f"videotestsrc is-live=true pattern=ball ! {caps}"


def feed(appsrc, state):
    """Pushes the next frame; runs every 100 ms while the media exists."""
    data = frames[state["n"] % len(frames)]
    state["n"] += 1
    buf = Gst.Buffer.new_wrapped(data)
    buf.duration = Gst.SECOND // fps
    return appsrc.emit("push-buffer", buf) == Gst.FlowReturn.OK


def feed_due(appsrc, state):
    """Pushes every frame due by now at `fps` (a timer tick may come late); loops forever."""
    due = int((time.monotonic() - state["t0"]) * fps) + 1
    while state["n"] < due:
        if not feed(appsrc, state):
            return False
    return True


def configure(_factory, media):
    if frames is None:
        return
    appsrc = media.get_element().get_by_name("cam")
    if codec == "h264-file":
        GLib.timeout_add(max(1, 500 // fps), feed_due, appsrc, {"n": 0, "t0": time.monotonic()})
    else:
        GLib.timeout_add(100, feed, appsrc, {"n": 0})


server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( {src} ! {enc} )")
factory.set_shared(True)
factory.connect("media-configure", configure)
server.get_mount_points().add_factory(f"/{mount}", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
