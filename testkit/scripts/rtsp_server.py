#!/usr/bin/python3
"""A test RTSP camera on 127.0.0.1 (Debian gst-rtsp-server through PyGObject).

usage: rtsp_server.py PORT MOUNT [h264|jpeg] [VIDEO]
Serves a live test pattern (or VIDEO, looped) at rtsp://127.0.0.1:PORT/MOUNT, 320x240 at 10 fps.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, mount = sys.argv[1], sys.argv[2]
codec = sys.argv[3] if len(sys.argv) > 3 else "h264"
if len(sys.argv) > 4:
    src = f'multifilesrc location="{sys.argv[4]}" loop=true ! decodebin ! videoconvert ! videoscale ! videorate'
else:
    src = "videotestsrc is-live=true pattern=ball"
caps = "video/x-raw,width=320,height=240,framerate=10/1"
if codec == "jpeg":
    enc = "jpegenc ! rtpjpegpay name=pay0 pt=26"
else:
    enc = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1"
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( {src} ! {caps} ! {enc} )")
factory.set_shared(True)
server.get_mount_points().add_factory(f"/{mount}", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
