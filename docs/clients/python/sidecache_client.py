"""A small sidecache client: standard library only (Python 3.8+).

    from sidecache_client import Sidecache
    sc = Sidecache()                      # SIDECACHE_URL or http://127.0.0.1:7070
    user = sc.get("user", org_id=org, user_id=uid)   # dict, or None when not found
    sc.invalidate_key("user", org_id=org, user_id=uid)  # after you write the row
    sc.invalidate(tenant=org)             # every entity of one tenant
    users = sc.get_many([("user", {"org_id": org, "user_id": u}) for u in uids])  # one request

Run it to read one user:  python3 sidecache_client.py ORG_ID USER_ID
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class SidecacheError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.code = body.get("error", "")
        self.param = body.get("param")
        super().__init__(f"{status} {self.code}: {body.get('message', '')}")


class Sidecache:
    def __init__(self, base_url=None, timeout=2.0, retries=2):
        self.base = (base_url or os.environ.get("SIDECACHE_URL", "http://127.0.0.1:7070")).rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.last_cache_status = None

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.base + path, data=data, method=method)
            if data is not None:
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    self.last_cache_status = resp.headers.get("Cache-Status")
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                self.last_cache_status = e.headers.get("Cache-Status")
                payload = json.loads(e.read() or b"{}")
                # 503 is "try again shortly" (PostgreSQL or Redis away, queue full).
                if e.code == 503 and attempt < self.retries:
                    time.sleep(float(e.headers.get("Retry-After", "1")) / 4)
                    continue
                raise SidecacheError(e.code, payload) from None

    def get(self, entity, **params):
        """The entity as a dict (or list), or None when sidecache answers 404 not_found."""
        try:
            return self._call("GET", f"/v1/entities/{entity}?{urllib.parse.urlencode(params)}")
        except SidecacheError as e:
            if e.status == 404 and e.code == "not_found":
                return None
            raise

    def get_many(self, requests):
        """Many entities in one request: [(entity, {params}), ...] -> one item per request,
        in order: the value, None when not found, or a SidecacheError for that item."""
        body = {"requests": [{"entity": e, "params": p} for e, p in requests]}
        out = []
        for r in self._call("POST", "/v1/batch", body)["results"]:
            if r["status"] == 200:
                out.append(r["body"])
            elif r["status"] == 404 and r["error"].get("error") == "not_found":
                out.append(None)
            else:
                out.append(SidecacheError(r["status"], r["error"]))
        return out

    def invalidate_key(self, entity, **params):
        return self._call("DELETE", f"/v1/entities/{entity}?{urllib.parse.urlencode(params)}")

    def invalidate(self, entity=None, tenant=None, params=None, tag=None):
        body = {k: v for k, v in (("entity", entity), ("tenant", tenant), ("params", params), ("tag", tag))
                if v is not None}
        return self._call("POST", "/v1/invalidate", body)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: sidecache_client.py ORG_ID USER_ID")
    sc = Sidecache()
    user = sc.get("user", org_id=sys.argv[1], user_id=sys.argv[2])
    print(json.dumps({"user": user, "cache_status": sc.last_cache_status}))
    both = sc.get_many([("user", {"org_id": sys.argv[1], "user_id": sys.argv[2]}),
                        ("user", {"org_id": sys.argv[1], "user_id": "not-a-uuid"})])
    sc.invalidate_key("user", org_id=sys.argv[1], user_id=sys.argv[2])
    try:
        sc.get("user", org_id=sys.argv[1], user_id="not-a-uuid")
    except SidecacheError as e:
        print(json.dumps({"rejected_param": e.param}))
    print(json.dumps({"batch_user": both[0], "batch_rejected_param": both[1].param}))
    # Everything of the org tagged project:42 (the example entities' tag).
    print(json.dumps({"tag_invalidated": sc.invalidate(tenant=sys.argv[1], tag="project:42")["invalidated"]}))
