#include "tls_redis.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "harness.hpp"

namespace sidecache::it {

namespace {

void must(const std::vector<std::string>& argv) {
  auto [rc, out] = run_command(argv);
  if (rc != 0) throw std::runtime_error(argv[0] + " " + argv[1] + " failed: " + out);
}

// An EC P-256 key and a certificate for `subject`: self-signed when `ca` is
// empty, else signed by ca/ca_key with the extensions in `ext`.
void make_cert(const std::string& dir, const std::string& name, const std::string& subject, const std::string& ca,
               const std::string& ca_key, const std::string& ext) {
  std::string key = dir + "/" + name + ".key", crt = dir + "/" + name + ".crt";
  if (ca.empty()) {
    must({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
          key, "-out", crt, "-days", "2", "-subj", subject});
    return;
  }
  std::string csr = dir + "/" + name + ".csr", extfile = dir + "/" + name + ".ext";
  std::ofstream(extfile) << ext << "\n";
  must({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
        key, "-out", csr, "-subj", subject});
  must({"openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days",
        "2", "-extfile", extfile});
}

}  // namespace

const TlsFiles& TlsFiles::get() {
  static const TlsFiles files = [] {
    TlsFiles f;
    f.dir = make_temp_dir("tls");
    make_cert(f.dir, "ca", "/CN=sidecache test CA", "", "", "");
    make_cert(f.dir, "other-ca", "/CN=a CA nobody trusts", "", "", "");
    f.ca = f.dir + "/ca.crt";
    f.other_ca = f.dir + "/other-ca.crt";
    make_cert(f.dir, "server", "/CN=localhost", f.ca, f.dir + "/ca.key",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth");
    make_cert(f.dir, "client", "/CN=sidecache", f.ca, f.dir + "/ca.key", "extendedKeyUsage=clientAuth");
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
