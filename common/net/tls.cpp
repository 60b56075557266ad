#include "common/net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
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

bool looks_like_tls(std::span<const std::byte> first) {
  if (first.size() < 2) return false;
  const auto type = std::to_integer<uint8_t>(first[0]);
  return (type == 0x15 || type == 0x16) && std::to_integer<uint8_t>(first[1]) == 0x03;
}

bool looks_like_cql_response(std::span<const std::byte> first) {
  if (first.empty()) return false;
  const auto b = std::to_integer<uint8_t>(first[0]);
  const uint8_t version = b & 0x7f;
  return (b & 0x80) != 0 && ((version >= 1 && version <= 5) || version == 0x41 || version == 0x42);
}

bool tls_error_means_plain_peer(const boost::system::error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return false;
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_WRONG_SSL_VERSION:
      return true;
    default:
      return false;
  }
}

bool tls_error_ambiguous(const boost::system::error_code& ec) {
  if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::asio::error::eof ||
      ec == boost::asio::error::connection_reset)
    return true;
  return ec.category() == boost::asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
             SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

std::vector<std::byte> client_hello() {
  std::vector<std::byte> out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return out;
  SSL* ssl = SSL_new(ctx);
  if (ssl) {
    BIO* in = BIO_new(BIO_s_mem());
    BIO* wire = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, wire);  // owned by `ssl` from here
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl);  // writes the ClientHello, then wants to read
    char* data = nullptr;
    const long n = BIO_get_mem_data(wire, &data);
    for (long i = 0; i < n; ++i) out.push_back(static_cast<std::byte>(data[i]));
    SSL_free(ssl);
  }
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return out;
}

}  // namespace zdm::net
