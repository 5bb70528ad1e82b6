#include "tls_redis.hpp"

#include <filesystem>
#include <stdexcept>

#include "harness.hpp"

namespace sidecache::it {

const TlsFiles& TlsFiles::get() {
  // The certificates come from the script the benchmarks use too.
  static const TlsFiles files = [] {
    TlsFiles f;
    std::string home = make_temp_dir("tls");
    auto [rc, out] = run_command({source_dir() + "/scripts/services.sh", "tls-certs", home});
    if (rc != 0) throw std::runtime_error("services.sh tls-certs failed: " + out);
    f.dir = home + "/tls";
    f.ca = f.dir + "/ca.crt", f.other_ca = f.dir + "/other-ca.crt";
    f.server_cert = f.dir + "/server.crt", f.server_key = f.dir + "/server.key";
    f.client_cert = f.dir + "/client.crt", f.client_key = f.dir + "/client.key";
    return f;
  }();
  return files;
}

TlsRedis::TlsRedis(bool require_client_cert) {
  const TlsFiles& f = TlsFiles::get();
  dir_ = make_temp_dir("tls-redis");
  port_ = free_port();
  auto [rc, out] = run_command({"redis-server", "--port", "0", "--tls-port", std::to_string(port_), "--bind", "127.0.0.1",
                                "--tls-cert-file", f.server_cert, "--tls-key-file", f.server_key, "--tls-ca-cert-file",
                                f.ca, "--tls-auth-clients", require_client_cert ? "yes" : "no", "--save", "",
                                "--appendonly", "no", "--dir", dir_, "--daemonize", "yes", "--pidfile",
                                dir_ + "/redis.pid", "--logfile", dir_ + "/redis.log"});
  if (rc != 0) throw std::runtime_error("redis-server with TLS did not start: " + out);
  if (!eventually([&] { return cli("ping") == "PONG"; })) throw std::runtime_error("TLS redis-server did not answer:\n" + log());
}

TlsRedis::~TlsRedis() {
  cli("shutdown nosave");
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string TlsRedis::url(const std::string& host) const { return "rediss://" + host + ":" + std::to_string(port_) + "/0"; }

std::string TlsRedis::cli(const std::string& args) const {
  const TlsFiles& f = TlsFiles::get();
  auto [rc, out] = run_command({"sh", "-c", "redis-cli --tls --cacert " + f.ca + " --cert " + f.client_cert + " --key " +
                                                f.client_key + " -h 127.0.0.1 -p " + std::to_string(port_) + " " + args});
  (void)rc;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string TlsRedis::log() const { return read_file(dir_ + "/redis.log"); }

}  // namespace sidecache::it
