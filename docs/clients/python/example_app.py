"""The tiny example app of deploy/compose: GET /users/{org_id}/{user_id}
answers the user through sidecache. Standard library only."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sidecache_client import Sidecache, SidecacheError

sc = Sidecache()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts == ["healthz"]:
            return self.reply(200, {"status": "ok"})
        if len(parts) != 3 or parts[0] != "users":
            return self.reply(404, {"error": "try /users/{org_id}/{user_id}"})
        try:
            user = sc.get("user", org_id=parts[1], user_id=parts[2])
        except SidecacheError as e:
            return self.reply(502 if e.status >= 500 else e.status, {"error": str(e)})
        if user is None:
            return self.reply(404, {"error": "no such user"})
        self.reply(200, {"user": user, "served_by": sc.last_cache_status})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
