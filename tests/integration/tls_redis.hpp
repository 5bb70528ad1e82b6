#pragma once
// Redis over TLS for the integration tests: certificates made with openssl
// at test time by `scripts/services.sh tls-certs` (a CA, a second CA nobody
// trusts, a server certificate for localhost and 127.0.0.1, a client
// certificate), and a redis-server of the test's own that speaks only TLS,
// on loopback, on an ephemeral port.
#include <string>

namespace sidecache::it {

struct TlsFiles {
  // Made once per test process, in a temporary folder.
  static const TlsFiles& get();
  std::string dir;
  std::string ca, other_ca;                // CA certificates (PEM)
  std::string server_cert, server_key;     // signed by `ca`; DNS:localhost, IP:127.0.0.1
  std::string client_cert, client_key;     // signed by `ca`; clientAuth
};

class TlsRedis {
 public:
  // `require_client_cert`: tls-auth-clients yes (else no).
  explicit TlsRedis(bool require_client_cert = false);
  ~TlsRedis();
  TlsRedis(const TlsRedis&) = delete;
  TlsRedis& operator=(const TlsRedis&) = delete;
  int port() const { return port_; }
  // rediss://<host>:<port>/0
  std::string url(const std::string& host = "127.0.0.1") const;
  // redis-cli over TLS, with the client certificate; the output, trimmed.
  std::string cli(const std::string& args) const;
  std::string log() const;

 private:
  std::string dir_;
  int port_ = 0;
};

}  // namespace sidecache::it
