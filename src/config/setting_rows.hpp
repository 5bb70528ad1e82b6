#pragma once
// Helpers that build rows of the settings table (settings.cpp and the
// files that add sections to it). Private to the config module.
#include <functional>
#include <string>
#include <vector>

#include "sidecache/config/settings.hpp"
#include "value_parsers.hpp"

namespace sidecache::config::detail {

// A row's key, type, default, reload rule and doc. Out of line (settings.cpp):
// inlined into every row, gcc 12's -O3 warns of a memcpy overlap that cannot
// happen (-Wrestrict) on these string assignments.
Setting setting_head(const char* key, const char* type, const char* def, OnReload reload, const char* doc);

// A path relative to the main file's folder `dir` (absolute ones as they are).
std::string resolve(const std::string& dir, const std::string& p);

// A row whose value lives at get(cfg) and is parsed by parse(key, text, dir, value&).
template <class Get, class P>
inline Setting row(const char* key, const char* type, const char* def, OnReload reload, const char* doc, Get get, P parse) {
  Setting s = setting_head(key, type, def, reload, doc);
  s.parse = [get, parse, k = std::string(key)](Config& c, const std::string& text, const std::string& dir) {
    return parse(k, text, dir, get(c));
  };
  s.same = [get](const Config& a, const Config& b) { return get(a) == get(b); };
  s.keep = [get](Config& to, const Config& from) { get(to) = get(from); };
  return s;
}

// Value parsers, by type.
inline auto ms(bool positive = true) {
  return [positive](const std::string& k, const std::string& t, const std::string&, milliseconds& out) {
    microseconds d{};
    std::string why = detail::duration_value(k, t, positive, d);
    if (why.empty()) out = std::chrono::duration_cast<milliseconds>(d);
    return why;
  };
}
inline auto us() {
  return [](const std::string& k, const std::string& t, const std::string&, microseconds& out) {
    return detail::duration_value(k, t, true, out);
  };
}
template <class T>
auto whole(long long lo, long long hi) {
  return [lo, hi](const std::string& k, const std::string& t, const std::string&, T& out) {
    long long v = 0;
    std::string why = detail::integer_value(k, t, lo, hi, v);
    if (why.empty()) out = static_cast<T>(v);
    return why;
  };
}
inline auto boolean() {
  return [](const std::string& k, const std::string& t, const std::string&, bool& out) { return detail::bool_value(k, t, out); };
}
// A string checked by ok(); `fix` says what a good one looks like.
inline auto text(std::function<bool(const std::string&)> ok = {}, std::string fix = {}) {
  return [ok, fix](const std::string&, const std::string& t, const std::string&, std::string& out) {
    if (ok && !ok(t)) return fix;
    out = t;
    return std::string();
  };
}
// The `tenants:` section and l1.max_tenant_share, metrics.top_tenants
// (settings_tenants.cpp).
void add_tenant_settings(std::vector<Setting>& t);
// The `redis.tls:` section (settings_redis.cpp).
void add_redis_tls_settings(std::vector<Setting>& t);
// redis.mode, redis.sentinels, redis.master_name, redis.invalidation_replicas (settings_redis.cpp).
void add_redis_topology_settings(std::vector<Setting>& t);
// What is wrong with the Redis settings taken together (TLS, mode), or ""
// (settings_redis.cpp); `where` is the setting to point at.
std::string redis_problem(const RedisConfig& r, std::string& where);
// The `audit:` section (settings_tenants.cpp).
void add_audit_settings(std::vector<Setting>& t);

}  // namespace sidecache::config::detail
