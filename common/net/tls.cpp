#include "common/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace zdm::net {

namespace {

// Fails with the setting's name and the file when it cannot be read: the OpenSSL error for a
// missing file ("system library") tells an operator less than errno does.
void require_readable(const std::string& key, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw TlsError(key + ": cannot read " + path + ": " + std::strerror(errno));
}

std::string openssl_reason(const boost::system::error_code& ec) {
  std::string r = ec.message();
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    r = buf;
  }
  return r;
}

void load_ca(ssl::context& ctx, const TlsFiles& f) {
  require_readable(f.ca_key, f.ca_path);
  boost::system::error_code ec;
  ctx.load_verify_file(f.ca_path, ec);
  if (ec)
    throw TlsError(f.ca_key + ": " + f.ca_path + " is not a PEM CA certificate (" +
                   openssl_reason(ec) + ")");
}

void load_cert_and_key(ssl::context& ctx, const TlsFiles& f) {
  require_readable(f.cert_key, f.cert_path);
  require_readable(f.key_key, f.key_path);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(f.cert_path, ec);
  if (ec)
    throw TlsError(f.cert_key + ": " + f.cert_path + " is not a PEM certificate (" +
                   openssl_reason(ec) + ")");
  ctx.use_private_key_file(f.key_path, ssl::context::pem, ec);
  if (ec)
    throw TlsError(f.key_key + ": " + f.key_path + " is not a PEM private key (" +
                   openssl_reason(ec) + ")");
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    throw TlsError(f.key_key + ": " + f.key_path + " does not match the certificate in " +
                   f.cert_path);
}

std::shared_ptr<ssl::context> new_context(ssl::context::method m) {
  auto ctx = std::make_shared<ssl::context>(m);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  return ctx;
}

}  // namespace

std::shared_ptr<ssl::context> make_client_context(const TlsFiles& files) {
  if (files.ca_path.empty())
    throw TlsError(files.ca_key + ": required to verify the server's certificate");
  if (files.cert_path.empty() != files.key_path.empty())
    throw TlsError(files.cert_path.empty() ? files.cert_key + ": required with " + files.key_key
                                           : files.key_key + ": required with " + files.cert_key);
  auto ctx = new_context(ssl::context::tls_client);
  load_ca(*ctx, files);
  if (!files.cert_path.empty()) load_cert_and_key(*ctx, files);
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::shared_ptr<ssl::context> make_server_context(const TlsFiles& files, bool require_client_auth) {
  if (files.cert_path.empty()) throw TlsError(files.cert_key + ": required for TLS");
  if (files.key_path.empty()) throw TlsError(files.key_key + ": required for TLS");
  auto ctx = new_context(ssl::context::tls_server);
  load_cert_and_key(*ctx, files);
  if (require_client_auth) {
    if (files.ca_path.empty())
      throw TlsError(files.ca_key + ": required to verify client certificates");
    load_ca(*ctx, files);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else if (!files.ca_path.empty()) {
    load_ca(*ctx, files);
    ctx->set_verify_mode(ssl::verify_peer);  // verify a certificate if the client sends one
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

void expect_peer_name(ssl::stream<boost::asio::ip::tcp::socket>& stream, const std::string& host) {
  SSL* s = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(s);
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      throw TlsError("cannot verify the peer's certificate against IP address " + host);
    return;
  }
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) != 1)
    throw TlsError("cannot verify the peer's certificate against host name " + host);
  SSL_set_tlsext_host_name(s, host.c_str());
}

std::string verify_failure(ssl::stream<boost::asio::ip::tcp::socket>& stream) {
  long r = SSL_get_verify_result(stream.native_handle());
  if (r == X509_V_OK) return "";
  return X509_verify_cert_error_string(r);
}

}  // namespace zdm::net
