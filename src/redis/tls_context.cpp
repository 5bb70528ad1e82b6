#include "tls_context.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <map>
#include <mutex>

#include "sidecache/redis/tls.hpp"

namespace sidecache::redis {

namespace ssl = boost::asio::ssl;

namespace {

std::shared_ptr<ssl::context> build(const config::RedisConfig& r, std::string& why) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (r.tls_ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) {
      why = "the system's CA store cannot be loaded (" + ec.message() + "); set redis.tls.ca_file";
      return nullptr;
    }
  } else if (ctx->load_verify_file(r.tls_ca_file, ec); ec) {
    why = "redis.tls.ca_file '" + r.tls_ca_file + "' holds no usable CA certificate (" + ec.message() +
          "); give the PEM file of the CA that signed the server's certificate";
    return nullptr;
  }
  if (!r.tls_cert_file.empty()) {
    if (ctx->use_certificate_chain_file(r.tls_cert_file, ec); ec) {
      why = "redis.tls.cert_file '" + r.tls_cert_file + "' holds no usable certificate (" + ec.message() +
            "); give the client certificate in PEM";
      return nullptr;
    }
    ctx->use_private_key_file(r.tls_key_file, ssl::context::pem, ec);
    if ((ec && ec.message().find("mismatch") != std::string::npos) ||
        (!ec && SSL_CTX_check_private_key(ctx->native_handle()) != 1)) {
      why = "redis.tls.key_file '" + r.tls_key_file + "' is not the key of redis.tls.cert_file '" + r.tls_cert_file +
            "'; give the pair that belongs together";
      return nullptr;
    }
    if (ec) {
      why = "redis.tls.key_file '" + r.tls_key_file + "' holds no usable private key (" + ec.message() +
            "); give the client certificate's key in PEM, unencrypted";
      return nullptr;
    }
  }
  ctx->set_verify_mode(r.tls_verify ? ssl::verify_peer : ssl::verify_none);
  return ctx;
}

}  // namespace

std::shared_ptr<ssl::context> tls_context(const config::RedisConfig& r, std::string& why) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<ssl::context>> built;
  std::string key = r.tls_ca_file + '\n' + r.tls_cert_file + '\n' + r.tls_key_file + '\n' + (r.tls_verify ? "1" : "0");
  std::lock_guard lock(mu);
  auto& ctx = built[key];
  if (!ctx) ctx = build(r, why);
  return ctx;
}

std::string tls_setup_problem(const config::RedisConfig& r) {
  if (!r.tls()) return {};
  std::string why;
  return tls_context(r, why) ? std::string() : why;
}

std::string tls_prepare(void* handle, const config::RedisConfig& r) {
  SSL* s = static_cast<SSL*>(handle);
  const std::string& name = r.tls_name();
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  bool is_ip = !ec, ok = true;
  if (!is_ip) ok = SSL_set_tlsext_host_name(s, name.c_str()) == 1;  // SNI takes names only
  if (ok && r.tls_verify)
    ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), name.c_str()) == 1
               : SSL_set1_host(s, name.c_str()) == 1;
  return ok ? std::string() : "cannot set the TLS server name '" + name + "'";
}

std::string tls_failure(void* handle, const std::string& error, const config::RedisConfig& r) {
  long v = handle ? SSL_get_verify_result(static_cast<SSL*>(handle)) : X509_V_OK;
  std::string why = "TLS: " + error;
  if (v != X509_V_OK) {
    why = std::string("TLS: the server's certificate was refused: ") + X509_verify_cert_error_string(v);
    switch (v) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return why + "; it does not name '" + r.tls_name() +
               "': set redis.tls.server_name to a name it carries, or reach Redis by that name";
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return why + "; renew the server's certificate (or fix this machine's clock)";
      default:
        return why + "; set redis.tls.ca_file to the CA that signed the server's certificate";
    }
  }
  if (error.find("certificate required") != std::string::npos || error.find("handshake failure") != std::string::npos)
    return why + "; the server may ask for a client certificate: set redis.tls.cert_file and redis.tls.key_file";
  if (error.find("wrong version number") != std::string::npos || error.find("packet length too long") != std::string::npos)
    return why + "; the server does not speak TLS on this port: use a redis:// URL, or its TLS port";
  return why;
}

}  // namespace sidecache::redis
