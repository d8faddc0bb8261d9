#!/usr/bin/env python3
"""A test HTTPS server on 127.0.0.1 (Python's http.server + ssl, standard library only): answers
every POST with 200 {"ok": true} and prints one JSON line per request on stdout:
{"path": ..., "body": ...}. Used by the tests as a stand-in for the Telegram Bot API.

    https_recorder.py CERT KEY PORT
"""
import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        print(json.dumps({"path": self.path, "body": body}), flush=True)
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def main():
    cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
