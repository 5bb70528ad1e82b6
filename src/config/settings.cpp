#include "sidecache/config/settings.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "setting_rows.hpp"
#include "value_parsers.hpp"
#include "yaml_file.hpp"

namespace sidecache::config {
namespace {

using detail::bool_value;
using detail::duration_value;
using detail::fraction_value;
using detail::integer_value;
namespace fs = std::filesystem;
using Parse = std::function<std::string(Config&, const std::string&, const std::string&)>;
using detail::row;
using detail::ms;
using detail::us;
using detail::whole;
using detail::boolean;
using detail::text;

bool plain_name(const std::string& s) { return detail::is_identifier(s, false); }
using detail::resolve;

std::string read_token(Config& c, const std::string& t, const std::string& dir) {
  c.auth.token_file = resolve(dir, t);
  std::ifstream in(c.auth.token_file);
  if (!in) return "auth.token_file '" + c.auth.token_file + "' cannot be read: " + std::strerror(errno);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string tok = ss.str();
  while (!tok.empty() && std::isspace(static_cast<unsigned char>(tok.back()))) tok.pop_back();
  while (!tok.empty() && std::isspace(static_cast<unsigned char>(tok.front()))) tok.erase(0, 1);
  c.auth.token = tok;
  if (tok.size() < 16)
    return "the token in '" + c.auth.token_file + "' is shorter than 16 characters; use a long random one (openssl rand -hex 32)";
  return {};
}

}  // namespace

std::string detail::resolve(const std::string& dir, const std::string& p) {
  fs::path fp(p);
  if (fp.is_relative()) fp = fs::path(dir) / fp;
  return fp.lexically_normal().string();
}

Setting detail::setting_head(const char* key, const char* type, const char* def, OnReload reload, const char* doc) {
  Setting s;
  s.key = key;
  s.type = type;
  s.default_text = def;
  s.reload = reload;
  s.doc = doc;
  return s;
}

namespace {

std::vector<Setting> build() {
  const auto A = OnReload::applies, R = OnReload::restart;
  std::vector<Setting> t;

  Setting listen;
  listen.key = "listen";
  listen.type = "host:port, [v6]:port or unix:/path";
  listen.default_text = "127.0.0.1:7070";
  listen.env = "SIDECACHE_LISTEN";
  listen.doc = "Where the HTTP API listens. A unix socket is created with mode 0660 and removed on shutdown.";
  listen.parse = [](Config& c, const std::string& v, const std::string&) {
    std::string why;
    auto l = parse_listen(v, why);
    if (!l) return "listen '" + v + "': " + why;
    l->unix_mode = c.listen.unix_mode;
    l->unix_group = c.listen.unix_group;
    c.listen = *l;
    return std::string();
  };
  listen.same = [](const Config& a, const Config& b) { return a.listen.text == b.listen.text; };
  listen.keep = [](Config& to, const Config& from) {
    to.listen.is_unix = from.listen.is_unix;
    to.listen.host = from.listen.host;
    to.listen.port = from.listen.port;
    to.listen.path = from.listen.path;
    to.listen.text = from.listen.text;
  };
  t.push_back(listen);
  t.push_back(row("unix_socket.mode", "octal permissions", "\"0660\"", R, "Permissions of the unix socket.",
                  [](auto& c) -> auto& { return c.listen.unix_mode; },
                  [](const std::string&, const std::string& m, const std::string&, unsigned& out) {
                    std::string v = m;
                    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
                    char* end = nullptr;
                    long n = std::strtol(v.c_str(), &end, 8);
                    if (v.empty() || *end != '\0' || n < 0 || n > 0777)
                      return std::string("unix_socket.mode must be octal permissions like \"0660\"");
                    out = static_cast<unsigned>(n);
                    return std::string();
                  }));
  t.push_back(row("unix_socket.group", "group name", "", R, "Group of the unix socket.",
                  [](auto& c) -> auto& { return c.listen.unix_group; }, text()));
  Setting workers = row("workers", "integer 1..256", "the number of cores", R, "I/O threads, each with its own Redis connection.",
                        [](auto& c) -> auto& { return c.workers; }, whole<unsigned>(1, 256));
  workers.literal_default = false;
  t.push_back(workers);
  t.push_back(row("key_prefix", "string without spaces", "sc:", A,
                  "Prefix of every Redis key; with L1 on it also names the L1 channel, so then it needs a restart.",
                  [](auto& c) -> auto& { return c.key_prefix; },
                  text([](const std::string& s) {
                    return std::none_of(s.begin(), s.end(), [](unsigned char ch) { return ch <= 0x20 || ch == 0x7f; });
                  }, "key_prefix must not contain spaces or control characters")));
  t.push_back(row("tenant.param", "parameter name", "org_id", A, "The parameter that names the tenant in every tenant-scoped entity.",
                  [](auto& c) -> auto& { return c.tenant.param; },
                  text(plain_name, "tenant.param must be a plain lower-case name like org_id")));
  t.push_back(row("tenant.type", "uuid | int | slug", "uuid", A, "Its type.",
                  [](auto& c) -> auto& { return c.tenant.type; },
                  [](const std::string& k, const std::string& v, const std::string&, ParamType& out) {
                    return detail::param_type_value(k, v, false, out);
                  }));
  detail::add_tenant_settings(t);

  Setting url;
  url.key = "redis.url";
  url.type = "redis://[user:password@]host:port/db, rediss://... (TLS) or unix:///path";
  url.default_text = "redis://127.0.0.1:6379/0";
  url.env = "SIDECACHE_REDIS_URL";
  url.doc = "The Redis server. The password is masked in logs.";
  url.parse = [](Config& c, const std::string& v, const std::string&) {
    std::string why;
    auto r = parse_redis_url(v, why);
    if (!r) return "redis.url '" + mask_secrets(v) + "': " + why;
    RedisConfig& d = c.redis;
    d.url = r->url, d.is_unix = r->is_unix, d.host = r->host, d.port = r->port, d.path = r->path;
    d.username = r->username, d.password = r->password, d.db = r->db, d.url_tls = r->url_tls;
    return std::string();
  };
  url.same = [](const Config& a, const Config& b) { return a.redis.url == b.redis.url; };
  url.keep = [](Config& to, const Config& from) {
    RedisConfig& d = to.redis;
    const RedisConfig& r = from.redis;
    d.url = r.url, d.is_unix = r.is_unix, d.host = r.host, d.port = r.port, d.path = r.path;
    d.username = r.username, d.password = r.password, d.db = r.db, d.url_tls = r.url_tls;
  };
  t.push_back(url);
  detail::add_redis_topology_settings(t);
  t.push_back(row("redis.timeout", "duration", "50ms", R, "Deadline of every Redis command; past it the read goes to PostgreSQL. For the breaker, a timed-out command is a failure only if its reply never comes (the connection is lost, or nothing is read for 4 x this, at least 200 ms): a large value that is slow to read is not.",
                  [](auto& c) -> auto& { return c.redis.timeout; }, ms()));
  t.push_back(row("redis.connect_timeout", "duration", "500ms", R, "Deadline of a connection attempt.",
                  [](auto& c) -> auto& { return c.redis.connect_timeout; }, ms()));
  detail::add_redis_tls_settings(t);
  t.push_back(row("redis.breaker.failures", "integer 1..1000000", "5", R, "Consecutive failures (timeouts, lost connections) that open the circuit breaker.",
                  [](auto& c) -> auto& { return c.redis.breaker_failures; }, whole<unsigned>(1, 1000000)));
  t.push_back(row("redis.breaker.open_timeout", "duration", "2s", R, "How long the breaker stays open before half-open probes.",
                  [](auto& c) -> auto& { return c.redis.breaker_open_timeout; }, ms()));
  t.push_back(row("redis.breaker.half_open_probes", "integer 1..1000", "1", R, "How many probes may go to Redis when half-open; that many successes close it.",
                  [](auto& c) -> auto& { return c.redis.breaker_half_open_probes; }, whole<unsigned>(1, 1000)));
  Setting dsn = row("postgres.dsn", "libpq connection string or URL", "", R,
                    "The PostgreSQL database (required: here or in the environment).",
                    [](auto& c) -> auto& { return c.postgres.dsn; }, text());
  dsn.env = "SIDECACHE_POSTGRES_DSN";
  t.push_back(dsn);
  t.push_back(row("postgres.pool_size", "integer 1..1024", "8", R, "Connections, spread over the workers (each driven by its worker's loop, no thread of its own); all are opened at start, with every entity's statement prepared on each (one that cannot be opened then is opened on first use).",
                  [](auto& c) -> auto& { return c.postgres.pool_size; }, whole<std::size_t>(1, 1024)));
  t.push_back(row("postgres.queue_limit", "integer 0..1000000", "256", R, "Fills that may wait for a connection; beyond, 503 at once.",
                  [](auto& c) -> auto& { return c.postgres.queue_limit; }, whole<std::size_t>(0, 1000000)));
  t.push_back(row("postgres.statement_timeout", "duration", "2s", R, "Set on every connection; a query past it answers 504. A fill that waits in the queue longer than this answers 503. Cross-process fill leases live this long plus 1 s.",
                  [](auto& c) -> auto& { return c.postgres.statement_timeout; }, ms()));
  t.push_back(row("postgres.connect_timeout", "duration", "2s", R, "Libpq connect timeout (rounded up to seconds).",
                  [](auto& c) -> auto& { return c.postgres.connect_timeout; }, ms()));
  t.push_back(row("postgres.prepared", "on | off", "on", R,
                  "Named prepared statements. `off`: every fill uses the unnamed extended protocol, which works through PgBouncer in transaction or statement mode and RDS Proxy. With `on` behind such a pooler, the first clash is logged once and fills go unnamed.",
                  [](auto& c) -> auto& { return c.postgres.prepared; },
                  [](const std::string&, const std::string& v, const std::string&, bool& out) {
                    if (v == "on" || v == "true") out = true;
                    else if (v == "off" || v == "false") out = false;
                    else return std::string("postgres.prepared must be 'on' (named statements) or 'off' (behind PgBouncer in transaction mode)");
                    return std::string();
                  }));
  Setting listen_dsn = row("postgres.listen_dsn", "libpq connection string or URL", "postgres.dsn", R,
                           "A direct session to the primary for LISTEN (a pooler in transaction mode cannot LISTEN); `check --connect` tests it.",
                           [](auto& c) -> auto& { return c.postgres.listen_dsn; }, text());
  listen_dsn.literal_default = false;
  listen_dsn.env = "SIDECACHE_POSTGRES_LISTEN_DSN";
  t.push_back(listen_dsn);
  Setting replicas = row("postgres.replicas", "list of libpq connection strings", "[]", R,
                         "Streaming replicas. A fill reads one only when it has replayed every invalidation that covers the key (see [invalidation.md](invalidation.md#read-replicas)); otherwise the primary.",
                         [](auto& c) -> auto& { return c.postgres.replicas; },
                         [](const std::string& k, const std::string& v, const std::string&, std::vector<std::string>& out) {
                           out.clear();
                           std::size_t start = 0;
                           while (start <= v.size() && !v.empty()) {
                             std::size_t end = v.find('\n', start);
                             std::string item = v.substr(start, end == std::string::npos ? std::string::npos : end - start);
                             if (item.empty()) return k + ": an item is empty; write a connection string like \"host=replica-1 dbname=app user=app\"";
                             out.push_back(item);
                             if (end == std::string::npos) break;
                             start = end + 1;
                           }
                           if (out.size() > 16) return k + ": at most 16 replicas";
                           return std::string();
                         });
  replicas.list = true;
  replicas.literal_default = false;
  t.push_back(replicas);
  t.push_back(row("postgres.replica_wait", "duration", "20ms", R, "How long a fill may wait for a replica to replay far enough before it reads the primary.",
                  [](auto& c) -> auto& { return c.postgres.replica_wait; }, ms(false)));
  t.push_back(row("postgres.replica_max_lag", "duration", "5s", R, "A replica further behind the primary than this is not used at all; it bounds the staleness of reads no invalidation covers.",
                  [](auto& c) -> auto& { return c.postgres.replica_max_lag; }, ms()));
  t.push_back(row("defaults.ttl", "duration", "5m", A, "Entity TTL when the entity sets none.",
                  [](auto& c) -> auto& { return c.defaults.ttl; }, us()));
  t.push_back(row("defaults.ttl_jitter", "percentage", "10%", A, "A random extra of up to this share of the TTL, per stored value.",
                  [](auto& c) -> auto& { return c.defaults.ttl_jitter; },
                  [](const std::string& k, const std::string& v, const std::string&, double& out) { return fraction_value(k, v, out); }));
  t.push_back(row("defaults.negative_ttl", "duration", "30s", A, "How long \"no such row\" is remembered.",
                  [](auto& c) -> auto& { return c.defaults.negative_ttl; }, us()));
  t.push_back(row("http.max_connections", "integer 1..1000000", "4096", R, "Open connections; beyond, new ones are closed at once.",
                  [](auto& c) -> auto& { return c.http.max_connections; }, whole<std::size_t>(1, 1000000)));
  t.push_back(row("http.max_header_bytes", "integer 1024..1048576", "8192", R, "Header bytes (431 beyond).",
                  [](auto& c) -> auto& { return c.http.max_header_bytes; }, whole<std::size_t>(1024, 1 << 20)));
  t.push_back(row("http.max_target_bytes", "integer 64..1048576", "4096", R, "Request-target bytes (414 beyond).",
                  [](auto& c) -> auto& { return c.http.max_target_bytes; }, whole<std::size_t>(64, 1 << 20)));
  t.push_back(row("http.max_body_bytes", "integer 64..67108864", "65536", R, "Request body (POST /v1/invalidate); beyond, 413.",
                  [](auto& c) -> auto& { return c.http.max_body_bytes; }, whole<std::size_t>(64, 64 << 20)));
  t.push_back(row("http.max_batch", "integer 1..10000", "100", A, "Requests in one `POST /v1/batch`; beyond, 413.",
                  [](auto& c) -> auto& { return c.http.max_batch; }, whole<std::size_t>(1, 10000)));
  t.push_back(row("http.header_timeout", "duration", "10s", R, "Time to receive a whole request header; a slow client is disconnected.",
                  [](auto& c) -> auto& { return c.http.header_timeout; }, ms()));
  t.push_back(row("http.idle_timeout", "duration", "60s", R, "How long an idle keep-alive connection is kept.",
                  [](auto& c) -> auto& { return c.http.idle_timeout; }, ms()));
  t.push_back(row("invalidation.channel", "plain lower-case name", "sidecache_invalidate", R, "The LISTEN/NOTIFY channel of the triggers.",
                  [](auto& c) -> auto& { return c.invalidation.channel; },
                  text(plain_name,
                       "invalidation.channel must be a plain lower-case name like sidecache_invalidate")));
  t.push_back(row("invalidation.flush_on_listen", "true | false", "true", A,
                  "On every (re)LISTEN, invalidate every entity with invalidate_on (notifications sent meanwhile are lost).",
                  [](auto& c) -> auto& { return c.invalidation.flush_on_listen; }, boolean()));
  Setting token;
  token.key = "auth.token_file";
  token.type = "path";
  token.reload = A;
  token.doc = "When set, every `/v1` request needs `Authorization: Bearer <token>` (the file's content, at least 16 characters); see [security.md](security.md).";
  token.parse = read_token;
  token.same = [](const Config& a, const Config& b) { return a.auth.token == b.auth.token; };
  token.keep = [](Config& to, const Config& from) { to.auth.token_file = from.auth.token_file, to.auth.token = from.auth.token; };
  t.push_back(token);
  t.push_back(row("auth.metrics", "open | token", "open", A, "`open`: `GET /metrics` needs no token (scrapers on the pod network); `token`: it needs the bearer token of `auth.token_file` too.",
                  [](auto& c) -> auto& { return c.auth.metrics_need_token; },
                  [](const std::string&, const std::string& v, const std::string&, bool& out) {
                    if (v != "open" && v != "token") return std::string("auth.metrics must be 'open' (scrapers need no token) or 'token'");
                    out = v == "token";
                    return std::string();
                  }));
  t.push_back(row("l1.max_bytes", "size (64MiB, 512KiB, 0)", "0", R, "The in-process near cache (L1) in front of Redis, bounded by this many bytes (values, keys and bookkeeping). See [architecture.md](architecture.md#l1-the-near-cache).",
                  [](auto& c) -> auto& { return c.l1.max_bytes; },
                  [](const std::string&, const std::string& v, const std::string&, std::size_t& out) {
                    auto b = parse_bytes(v);
                    if (!b || *b > (std::size_t{1} << 40))
                      return "l1.max_bytes: '" + v + "' is not a size; write it like 64MiB, 512KiB or 0 (off)";
                    out = *b;
                    return std::string();
                  }));
  t.push_back(row("l1.ttl", "duration, at most 1m", "2s", A, "How long an L1 copy is served at most (never past the value's own TTL); the default `l1_ttl` of every entity.",
                  [](auto& c) -> auto& { return c.l1.ttl; },
                  [](const std::string& k, const std::string& v, const std::string&, microseconds& out) {
                    std::string why = duration_value(k, v, true, out);
                    if (why.empty() && out > kMaxL1Ttl) return std::string("l1.ttl is at most 1m; keep it short, like 2s");
                    return why;
                  }));
  t.push_back(row("max_value_bytes", "size from 1KiB to 512MiB", "1MiB", A,
                  "The largest value stored in Redis (an entity's max_value_bytes overrides it). A larger result is answered, marked `detail=too-large`, counted, and not stored: reading megabytes back would outlast redis.timeout on every hit.",
                  [](auto& c) -> auto& { return c.max_value_bytes; },
                  [](const std::string&, const std::string& v, const std::string&, std::size_t& out) {
                    auto b = parse_bytes(v);
                    if (!b || *b < 1024 || *b > (std::size_t{512} << 20))
                      return "max_value_bytes: '" + v + "' is not a size from 1KiB to 512MiB; write it like 4MiB";
                    out = *b;
                    return std::string();
                  }));
  t.push_back(row("shutdown_timeout", "duration", "10s", R, "How long SIGTERM waits for in-flight requests.",
                  [](auto& c) -> auto& { return c.shutdown_timeout; }, ms()));
  t.push_back(row("log_level", "trace | debug | info | warn | error | critical | off", "info", A, "`debug` logs one line per request.",
                  [](auto& c) -> auto& { return c.log_level; },
                  text([](const std::string& s) {
                    static const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
                    return std::find(levels.begin(), levels.end(), s) != levels.end();
                  }, "log_level is not valid; use trace, debug, info, warn, error, critical or off")));
  t.push_back(row("log_format", "text | json", "text", R, "`json`: one object per line, `{\"time\",\"level\",\"msg\"}`.",
                  [](auto& c) -> auto& { return c.log_json; },
                  [](const std::string&, const std::string& v, const std::string&, bool& out) {
                    if (v != "text" && v != "json") return std::string("log_format must be 'text' or 'json'");
                    out = v == "json";
                    return std::string();
                  }));
  t.push_back(row("access_log", "true | false", "false", A, "One `info` line per request (otherwise that line is `debug`).",
                  [](auto& c) -> auto& { return c.access_log; }, boolean()));
  Setting dir = row("entities_dir", "path", "", A, "Relative to the main file; every `*.yaml` / `*.yml` in it is one entity.",
                    [](auto& c) -> auto& { return c.entities_dir; },
                    [](const std::string&, const std::string& v, const std::string& base, std::string& out) {
                      out = resolve(base, v);
                      return std::string();
                    });
  t.push_back(dir);
  detail::add_audit_settings(t);
  return t;
}

}  // namespace

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = build();
  return table;
}

std::vector<std::string> setting_sections() {
  std::vector<std::string> out;
  for (const auto& s : settings()) {
    for (std::size_t dot = s.key.find('.'); dot != std::string::npos; dot = s.key.find('.', dot + 1)) {
      std::string sec = s.key.substr(0, dot);
      if (std::find(out.begin(), out.end(), sec) == out.end()) out.push_back(sec);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '.') < std::count(b.begin(), b.end(), '.');
  });
  return out;
}

std::vector<std::string> setting_children(const std::string& section) {
  std::vector<std::string> out;
  std::string prefix = section.empty() ? "" : section + ".";
  for (const auto& s : settings()) {
    if (s.key.compare(0, prefix.size(), prefix) != 0) continue;
    std::string rest = s.key.substr(prefix.size());
    std::string child = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
  }
  return out;
}

std::vector<std::string> keep_restart_settings(Config& fresh, const Config& running) {
  std::vector<std::string> changed;
  for (const auto& s : settings()) {
    if (s.reload != OnReload::restart) continue;
    if (!s.same(fresh, running)) changed.push_back(s.key);
    s.keep(fresh, running);
  }
  return changed;
}

std::string settings_markdown() {
  auto cell = [](const std::string& t) {  // a '|' would end the cell
    std::string out;
    for (char c : t) {
      if (c == '|') out += '\\';
      out += c;
    }
    return out;
  };
  std::string md = "| setting | takes | default | on reload | environment | what it does |\n|---|---|---|---|---|---|\n";
  for (const auto& s : settings()) {
    md += "| `" + s.key + "` | " + cell(s.type) + " | " + (s.default_text.empty() ? "" : s.literal_default ? "`" + s.default_text + "`" : s.default_text) +
          " | " + (s.reload == OnReload::applies ? "applies" : "needs a restart") + " | " +
          (s.env.empty() ? "" : "`" + s.env + "`") + " | " + cell(s.doc) + " |\n";
  }
  return md;
}

}  // namespace sidecache::config
