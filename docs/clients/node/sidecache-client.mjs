// A small sidecache client for Node.js 18+ (built-in fetch, no packages).
//
//   import { Sidecache } from "./sidecache-client.mjs";
//   const sc = new Sidecache();                 // SIDECACHE_URL or http://127.0.0.1:7070
//   const user = await sc.get("user", { org_id, user_id });   // object, or null when not found
//   await sc.invalidateKey("user", { org_id, user_id });      // after you write the row
//   await sc.invalidate({ tenant: org_id });                  // every entity of one tenant
//   await sc.invalidate({ tenant: org_id, tag: "project:42" }); // everything tagged project:42
//   const users = await sc.getMany(ids.map((user_id) => ["user", { org_id, user_id }]));  // one request
//
// Run it to read one user:  node sidecache-client.mjs ORG_ID USER_ID
export class SidecacheError extends Error {
  constructor(status, body) {
    super(`${status} ${body.error}: ${body.message}`);
    this.status = status;
    this.code = body.error;
    this.param = body.param;
  }
}

export class Sidecache {
  constructor(baseUrl = process.env.SIDECACHE_URL ?? "http://127.0.0.1:7070", { timeoutMs = 2000, retries = 2 } = {}) {
    this.base = baseUrl.replace(/\/$/, "");
    this.timeoutMs = timeoutMs;
    this.retries = retries;
    this.lastCacheStatus = null;
  }

  async #call(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const resp = await fetch(this.base + path, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      this.lastCacheStatus = resp.headers.get("cache-status");
      const payload = await resp.json();
      if (resp.ok) return payload;
      // 503 is "try again shortly" (PostgreSQL or Redis away, queue full).
      if (resp.status === 503 && attempt < this.retries) {
        await new Promise((r) => setTimeout(r, 250 * Number(resp.headers.get("retry-after") ?? 1)));
        continue;
      }
      throw new SidecacheError(resp.status, payload);
    }
  }

  async get(entity, params) {
    try {
      return await this.#call("GET", `/v1/entities/${entity}?${new URLSearchParams(params)}`);
    } catch (e) {
      if (e instanceof SidecacheError && e.status === 404 && e.code === "not_found") return null;
      throw e;
    }
  }

  // Many entities in one request: [[entity, params], ...] -> one item per
  // request, in order: the value, null when not found, or a SidecacheError.
  async getMany(requests) {
    const body = { requests: requests.map(([entity, params]) => ({ entity, params })) };
    const { results } = await this.#call("POST", "/v1/batch", body);
    return results.map((r) =>
      r.status === 200 ? r.body : r.status === 404 && r.error.error === "not_found" ? null : new SidecacheError(r.status, r.error),
    );
  }

  invalidateKey(entity, params) {
    return this.#call("DELETE", `/v1/entities/${entity}?${new URLSearchParams(params)}`);
  }

  invalidate({ entity, tenant, params, tag } = {}) {
    return this.#call("POST", "/v1/invalidate", { entity, tenant, params, tag });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [org_id, user_id] = process.argv.slice(2);
  if (!org_id || !user_id) {
    console.error("usage: node sidecache-client.mjs ORG_ID USER_ID");
    process.exit(64);
  }
  const sc = new Sidecache();
  const user = await sc.get("user", { org_id, user_id });
  console.log(JSON.stringify({ user, cache_status: sc.lastCacheStatus }));
  const both = await sc.getMany([["user", { org_id, user_id }], ["user", { org_id, user_id: "not-a-uuid" }]]);
  await sc.invalidateKey("user", { org_id, user_id });
  try {
    await sc.get("user", { org_id, user_id: "not-a-uuid" });
  } catch (e) {
    console.log(JSON.stringify({ rejected_param: e.param }));
  }
  console.log(JSON.stringify({ batch_user: both[0], batch_rejected_param: both[1].param }));
}
