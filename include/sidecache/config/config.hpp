#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sidecache::config {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// The type a request parameter is validated and normalised against.
enum class ParamType { uuid, integer, slug, string };

const char* to_string(ParamType t);

// One declared parameter of an entity.
struct ParamSpec {
  std::string name;
  ParamType type = ParamType::string;
  std::size_t max_len = 256;  // string only: maximum length in code points
  bool is_tenant = false;     // the tenant parameter of a tenant-scoped entity
};

enum class Scope { tenant, global };
enum class ResultShape { row, rows };

// A tag template ("project:{project_id}", "project:{row.project_id}"):
// literal text and placeholders. In an entity's `tags`, a placeholder names
// a param, or a column of the result (`row.` prefix); in an `invalidate_on`
// rule's, a column of the written row.
struct TagTemplate {
  struct Part {
    std::string literal;     // text, when index and column are unset
    int param = -1;          // an entity param (index into Entity::params)
    std::string column;      // a column (of the result, or of the written row)
  };
  std::string text;          // as written
  std::vector<Part> parts;
  bool from_row() const {    // known only once filled (uses a result column)
    for (const auto& p : parts)
      if (!p.column.empty()) return true;
    return false;
  }
};

// One `invalidate_on` rule: a change to a row of `table` invalidates this
// entity for the row's tenant, or the one key its mapped columns name, or
// (with `tags`) the tags the row names.
struct InvalidateOn {
  std::string table;          // "users" or "schema.users"
  std::string tenant_column;  // tenant-scoped entities: the column holding the tenant
  std::vector<std::pair<std::string, std::string>> params;  // entity param <- column
  std::vector<TagTemplate> tags;  // placeholders are the written row's columns
};

// An entity's batch form: one query that fills many keys that differ only in
// one parameter (POST /v1/batch's misses).
struct BatchForm {
  std::size_t param = 0;      // index into Entity::params of the parameter that varies
  std::string sql;            // as written
  std::string query;          // wrapped: one (key text, row JSON) pair per row, with $1..$n
  std::vector<std::size_t> bind;  // bind[i] = index into params for $(i+1); `param` binds the array
  std::string key_column;     // the column holding each row's value of `param`
  std::string statement;      // prepared statement name
};

// One cached entity, loaded from one YAML file.
struct Entity {
  std::string name;
  Scope scope = Scope::tenant;
  // For scope: tenant the tenant parameter comes first, then the declared
  // params in file order. Keys and SQL binds both follow this order.
  std::vector<ParamSpec> params;
  ResultShape result = ResultShape::row;
  std::string sql;           // as written, with :name placeholders
  std::string query;         // wrapped in row_to_json/json_agg, with $1..$n
  std::vector<std::size_t> bind;  // bind[i] = index into params for $(i+1)
  microseconds ttl{};
  microseconds negative_ttl{};
  double ttl_jitter = 0.0;   // fraction of ttl, added at random (0..ttl*jitter)
  std::string shape_hash;    // short hash of sql + result shape + params, part of every key
  std::string statement;     // prepared statement name: sc_<name>_<shape_hash>
  std::string file;          // where it was loaded from
  std::vector<InvalidateOn> invalidate_on;
  // Past its soft TTL a value stays in Redis for the longer of these two:
  microseconds stale_if_error{0};          // served when PostgreSQL fails or times out
  microseconds stale_while_revalidate{0};  // served while one background fill refreshes it
  double early_refresh_beta = 0.0;         // XFetch; 0 = off
  std::size_t max_concurrent_fills = 0;    // per process; 0 = no cap beyond the pool
  // Fills of one tenant of this entity's that may run at once in a pool:
  // tenants.max_concurrent_fills unless the entity file sets its own
  // (tenants: { max_concurrent_fills: N }); 0 = no cap.
  std::size_t tenant_max_concurrent_fills = 0;
  microseconds l1_ttl{0};                  // life of a copy in the in-process L1; 0 = not kept in L1
  std::size_t max_value_bytes = 1 << 20;   // a larger result is answered but not stored (default: the main file's)
  std::optional<BatchForm> batch;          // result: row entities only
  // Tags (docs/invalidation.md, "Tags"): a tag invalidation of the tenant
  // (or, for a global entity, of the global tag) drops every value that
  // carries it. Param tags are known before the read; column tags
  // (from_row) once filled, and are stored with the value.
  std::vector<TagTemplate> tags;
  bool column_tags() const {
    for (const auto& t : tags)
      if (t.from_row()) return true;
    return false;
  }

  // How long past the soft expiry a value may still be served stale.
  microseconds stale_window() const { return std::max(stale_if_error, stale_while_revalidate); }
};

// Where the HTTP server listens.
struct Listen {
  bool is_unix = false;
  std::string host = "127.0.0.1";  // tcp
  std::uint16_t port = 7070;
  std::string path;                // unix socket
  std::string text = "127.0.0.1:7070";  // as configured
  unsigned unix_mode = 0660;  // unix socket permissions
  std::string unix_group;     // unix socket group (empty: the process's)
};

// Optional bearer-token check for /v1 requests.
struct AuthConfig {
  std::string token_file;  // empty: no check
  std::string token;       // read from token_file at load
  bool metrics_need_token = false;  // auth.metrics: token (default: open)
};

// Parsed redis:// or unix:// URL.
// How sidecache finds its Redis (redis.mode).
enum class RedisMode {
  standalone,  // redis.url is the server
  sentinel,    // the master named redis.master_name, as redis.sentinels say
  cluster,     // Redis Cluster: redis.url (and redis.nodes) are seed nodes
};

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const HostPort&) const = default;
};

struct RedisConfig {
  RedisMode mode = RedisMode::standalone;
  std::vector<HostPort> sentinels;  // sentinel mode
  std::string master_name;          // sentinel mode
  std::vector<HostPort> nodes;      // cluster mode: more seed nodes than redis.url's
  // >0: an invalidation is acknowledged only once this many replicas have
  // it (WAIT), so that it survives the loss of its master.
  unsigned invalidation_replicas = 0;
  std::string url = "redis://127.0.0.1:6379/0";
  bool is_unix = false;
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string path;
  std::string username;
  std::string password;
  int db = 0;
  // TLS (docs/configuration.md, "Redis over TLS"): on with a rediss:// URL
  // or tls.enabled. The files are absolute paths once loaded.
  bool url_tls = false;      // the URL is rediss://
  bool tls_enabled = false;  // redis.tls.enabled
  std::string tls_ca_file;   // empty: the system's CA store
  std::string tls_cert_file;  // client certificate (with tls_key_file)
  std::string tls_key_file;
  std::string tls_server_name;  // SNI and the name checked; empty: the host
  bool tls_verify = true;
  bool tls() const { return url_tls || tls_enabled; }
  // The name the server's certificate must carry.
  const std::string& tls_name() const { return tls_server_name.empty() ? host : tls_server_name; }
  // host:port, or the socket's path: where a connection goes.
  std::string endpoint() const { return is_unix ? path : host + ":" + std::to_string(port); }
  // The same settings (TLS, timeouts, breaker, credentials) for the one
  // server at host:port, database 0: a sentinel, a cluster node.
  RedisConfig at(const std::string& other_host, std::uint16_t other_port) const {
    RedisConfig c = *this;
    c.mode = RedisMode::standalone;
    c.is_unix = false;
    c.host = other_host;
    c.port = other_port;
    c.db = 0;
    c.url = (tls() ? "rediss://" : "redis://") + other_host + ":" + std::to_string(other_port);
    return c;
  }
  milliseconds timeout{50};
  milliseconds connect_timeout{500};
  // Circuit breaker (gobreaker semantics): consecutive failures to trip,
  // how long it stays open, how many probes may test Redis when half-open.
  unsigned breaker_failures = 5;
  milliseconds breaker_open_timeout{2000};
  unsigned breaker_half_open_probes = 1;
};

struct PostgresConfig {
  std::string dsn;
  std::size_t pool_size = 8;
  std::size_t queue_limit = 256;
  milliseconds statement_timeout{2000};
  milliseconds connect_timeout{2000};
  // false: no named statements, every fill uses the unnamed extended
  // protocol (PgBouncer transaction/statement pooling, RDS Proxy).
  bool prepared = true;
  std::string listen_dsn;  // the LISTEN connection; empty: dsn
  std::vector<std::string> replicas;  // read replicas; fills go there when fresh enough
  milliseconds replica_wait{20};      // how long a fill waits for a replica to catch up
  milliseconds replica_max_lag{5000}; // a replica further behind is not used at all
  const std::string& listen_conninfo() const { return listen_dsn.empty() ? dsn : listen_dsn; }
};

struct TenantConfig {
  std::string param = "org_id";
  ParamType type = ParamType::uuid;
};

// Fairness between tenants in the PostgreSQL pools (the `tenants:` section).
// Global entities count as one tenant of their own.
struct TenantLimits {
  std::size_t max_concurrent_fills = 0;  // fills of one tenant running at once, per pool; 0: no cap
  std::size_t max_queued_fills = 0;      // waiting fills of one tenant, per pool; beyond, 503 at once; 0: only queue_limit
  bool fair_queue = true;                // round robin over per-tenant queues; false: one FIFO (for comparison)
};

struct HttpConfig {
  std::size_t max_connections = 4096;  // beyond, new connections are closed at once
  std::size_t max_header_bytes = 8192;
  std::size_t max_target_bytes = 4096;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_batch = 100;  // items in one POST /v1/batch; beyond, 413
  milliseconds header_timeout{10000};
  milliseconds idle_timeout{60000};
};

// Invalidation on write: the LISTEN channel the triggers notify.
struct InvalidationConfig {
  std::string channel = "sidecache_invalidate";
  // On every (re)connect of the listener, treat every entity with
  // invalidate_on as invalidated: notifications sent while nobody listened
  // are lost.
  bool flush_on_listen = true;
};

// The longest l1.ttl / l1_ttl: an L1 copy only hears of invalidations, so
// its life stays short (and L1 remembers invalidations this long at least).
inline constexpr std::chrono::minutes kMaxL1Ttl{1};

// The in-process near cache (L1) in front of Redis. Off while max_bytes is 0.
struct L1Config {
  std::size_t max_bytes = 0;
  microseconds ttl = std::chrono::seconds(2);  // default l1_ttl of every entity
  double max_tenant_share = 1.0;  // no tenant holds more than this share of max_bytes (1: no bound)
  bool enabled() const { return max_bytes > 0; }
};

// Metrics whose labels could grow without bound.
struct MetricsConfig {
  std::size_t top_tenants = 10;  // per-tenant series only for this many tenants, plus "(other)"
};

// The staleness audit: a share of hits re-read from PostgreSQL off the
// request path and compared with what was served.
struct AuditConfig {
  double sample = 0.0;               // share of hits audited; 0: off
  unsigned max_per_second = 20;      // audit queries per process, at most
  microseconds grace = std::chrono::seconds(2);  // how long an invalidation may take to be recorded
  bool enabled() const { return sample > 0.0; }
};

struct Defaults {
  microseconds ttl = std::chrono::minutes(5);
  double ttl_jitter = 0.10;
  microseconds negative_ttl = std::chrono::seconds(30);
};

// One problem found while loading: where it is and what to do about it.
struct Problem {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a line
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;
};

// The whole validated configuration.
struct Config {
  std::string file;
  Listen listen;
  unsigned workers = 0;
  std::string key_prefix = "sc:";
  TenantConfig tenant;
  TenantLimits tenants;
  RedisConfig redis;
  PostgresConfig postgres;
  std::string entities_dir;
  Defaults defaults;
  HttpConfig http;
  InvalidationConfig invalidation;
  AuthConfig auth;
  L1Config l1;
  MetricsConfig metrics;
  AuditConfig audit;
  milliseconds shutdown_timeout{10000};
  // The largest value stored in Redis (header and JSON); entities may say
  // otherwise. A larger result is answered but not stored: a multi-megabyte
  // read outlasts redis.timeout and would send every read of it to PostgreSQL.
  std::size_t max_value_bytes = 1 << 20;
  std::string log_level = "info";
  bool log_json = false;    // log_format: json (one object per line) | text
  bool access_log = false;  // one info line per request
  std::vector<Entity> entities;
  // What loads but is probably not what was meant, with file and line:
  // logged at start and on reload, printed by `check`.
  std::vector<Problem> warnings;

  const Entity* find_entity(std::string_view name) const;
  bool listens() const;  // some entity has invalidate_on
};


// Thrown by load() with every problem found in one pass.
class LoadError : public std::runtime_error {
 public:
  explicit LoadError(std::vector<Problem> problems);
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

// Reads an environment variable; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// Loads the main file and every entity file, applies environment overrides
// (SIDECACHE_LISTEN, SIDECACHE_REDIS_URL, SIDECACHE_POSTGRES_DSN).
// Throws LoadError listing every problem.
Config load(const std::string& path, const EnvLookup& env = process_env());

// Parsers shared with the tests.
std::optional<Listen> parse_listen(const std::string& text, std::string& why);
std::optional<RedisConfig> parse_redis_url(const std::string& url, std::string& why);

// "64MiB", "512KiB", "1GiB", "64MB", "1000000" -> bytes; nullopt if not a size.
std::optional<std::size_t> parse_bytes(const std::string& text);

// Masks the password in a Redis URL or a PostgreSQL DSN/URL for logging.
std::string mask_secrets(const std::string& url_or_dsn);

}  // namespace sidecache::config
