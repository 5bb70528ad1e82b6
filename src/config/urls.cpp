// The main file's address-like values: listen addresses, Redis URLs,
// PostgreSQL DSNs (masked for logs) and byte sizes.
#include <cctype>
#include <cstdlib>
#include <string>

#include "sidecache/config/config.hpp"
#include "sidecache/config/text.hpp"

namespace sidecache::config {

std::optional<Listen> parse_listen(const std::string& text, std::string& why) {
  Listen l;
  l.text = text;
  if (text.rfind("unix:", 0) == 0) {
    l.is_unix = true;
    l.path = text.substr(5);
    if (l.path.empty() || l.path[0] != '/') {
      why = "a unix socket must be an absolute path, like unix:/run/sidecache.sock";
      return std::nullopt;
    }
    if (l.path.size() >= 100) {
      why = "the unix socket path is too long (at most 100 bytes)";
      return std::nullopt;
    }
    return l;
  }
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = "write an IPv6 address as [::1]:7070";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      why = "write it as host:port (like 127.0.0.1:7070) or unix:/path/to.sock";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (host.empty() || port.empty() || *end != '\0' || p < 0 || p > 65535) {
    why = "write it as host:port with a port from 0 to 65535, like 127.0.0.1:7070";
    return std::nullopt;
  }
  l.host = host == "localhost" ? "127.0.0.1" : host;
  l.port = static_cast<std::uint16_t>(p);
  return l;
}

// A malformed escape stays as written (the URL is then refused or used as is).
std::string url_decode(const std::string& s) {
  std::string out;
  return percent_decode(s, out, false) ? out : s;
}

std::optional<RedisConfig> parse_redis_url(const std::string& url, std::string& why) {
  RedisConfig r;
  r.url = url;
  if (url.rfind("unix://", 0) == 0) {
    r.is_unix = true;
    std::string rest = url.substr(7);
    auto q = rest.find('?');
    r.path = rest.substr(0, q);
    if (q != std::string::npos) {
      std::string query = rest.substr(q + 1);
      std::stringstream ss(query);
      std::string kv;
      while (std::getline(ss, kv, '&')) {
        auto eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : url_decode(kv.substr(eq + 1));
        if (k == "db") r.db = std::atoi(v.c_str());
        else if (k == "password") r.password = v;
        else if (k == "user") r.username = v;
        else { why = "unknown option '" + k + "' in the unix:// Redis URL (use db, user, password)"; return std::nullopt; }
      }
    }
    if (r.path.empty() || r.path[0] != '/') { why = "write a unix socket URL as unix:///path/to/redis.sock?db=0"; return std::nullopt; }
    return r;
  }
  r.url_tls = url.rfind("rediss://", 0) == 0;
  if (url.rfind("redis://", 0) != 0 && !r.url_tls) {
    why = "the Redis URL must start with redis:// (rediss:// for TLS, unix:// for a socket), like redis://127.0.0.1:6379/0";
    return std::nullopt;
  }
  std::string rest = url.substr(r.url_tls ? 9 : 8);
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    if (colon == std::string::npos) {
      r.password = url_decode(cred);  // redis://secret@host is a common shorthand
    } else {
      r.username = url_decode(cred.substr(0, colon));
      r.password = url_decode(cred.substr(colon + 1));
    }
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    if (!db.empty()) {
      char* end = nullptr;
      long d = std::strtol(db.c_str(), &end, 10);
      if (*end != '\0' || d < 0 || d > 1000) { why = "the database in the Redis URL must be a number, like /0"; return std::nullopt; }
      r.db = static_cast<int>(d);
    }
  }
  std::string why_listen;
  if (hostport.find(':') == std::string::npos) hostport += ":6379";
  auto l = parse_listen(hostport, why_listen);
  if (!l || l->port == 0) { why = "the Redis URL needs host[:port], like redis://127.0.0.1:6379/0"; return std::nullopt; }
  r.host = l->host;
  r.port = l->port;
  return r;
}

std::string mask_secrets(const std::string& s) {
  std::string out = s;
  // URL form: scheme://user:password@host
  auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    auto at = out.find('@', scheme + 3);
    if (at != std::string::npos) {
      auto colon = out.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
      else if (out.compare(0, 8, "redis://") == 0 || out.compare(0, 9, "rediss://") == 0)
        out.replace(scheme + 3, at - scheme - 3, "***");
    }
    auto pw = out.find("password=");
    if (pw != std::string::npos) {
      auto end = out.find('&', pw);
      out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
    }
    return out;
  }
  // key=value DSN: password=secret or password='sec ret'
  std::size_t pos = 0;
  while ((pos = out.find("password", pos)) != std::string::npos) {
    std::size_t i = pos + 8;
    while (i < out.size() && out[i] == ' ') ++i;
    if (i >= out.size() || out[i] != '=') { pos = i; continue; }
    ++i;
    while (i < out.size() && out[i] == ' ') ++i;
    std::size_t end = i;
    if (end < out.size() && out[end] == '\'') {
      ++end;
      while (end < out.size() && out[end] != '\'') end += (out[end] == '\\') ? 2 : 1;
      end = std::min(end + 1, out.size());
    } else {
      while (end < out.size() && out[end] != ' ') ++end;
    }
    out.replace(i, end - i, "***");
    pos = i + 3;
  }
  return out;
}

std::optional<std::size_t> parse_bytes(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 15) return std::nullopt;
  std::size_t n = std::stoull(text.substr(0, i));
  std::string unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::vector<std::pair<std::string, std::size_t>> units = {
      {"", 1},          {"B", 1},          {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
      {"KB", 1000},     {"MB", 1000000},   {"GB", 1000000000},  {"k", 1000},         {"K", 1ull << 10},
      {"M", 1ull << 20}, {"G", 1ull << 30}};
  for (const auto& [u, mul] : units)
    if (unit == u) return n * mul;
  return std::nullopt;
}

}  // namespace sidecache::config
