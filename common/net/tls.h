// TLS contexts for both hops of the proxy and for zdm-testcluster: Asio's ssl over OpenSSL, PEM
// files only. No hand-written TLS: this file only loads files and sets verification options,
// with one clear error per problem (the key and the file, or the peer).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <memory>
#include <stdexcept>
#include <string>

namespace zdm::net {

namespace ssl = boost::asio::ssl;

/// A TLS setting that cannot take effect: a missing or unreadable file, a key that does not
/// match its certificate, a file that is not PEM. what() names the setting (e.g.
/// "origin_tls_server_ca_path") and the file.
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// PEM files of one side of a TLS hop, with the names of the settings they came from (for
/// errors). Empty paths are "not configured".
struct TlsFiles {
  std::string ca_path, cert_path, key_path;
  std::string ca_key = "ca", cert_key = "cert", key_key = "key";  // setting names for errors
};

/// Client side of a hop (proxy → cluster, drivers in tests): trusts `ca_path` (required), and
/// presents cert_path + key_path when both are set (mutual TLS). Throws TlsError.
std::shared_ptr<ssl::context> make_client_context(const TlsFiles& files);

/// Server side of a hop (client → proxy, zdm-testcluster): presents cert_path + key_path
/// (required). When `require_client_auth`, asks for a client certificate, verifies it against
/// ca_path (then required) and refuses clients without one; otherwise, with ca_path set, a
/// certificate a client presents must chain to it. Throws TlsError.
std::shared_ptr<ssl::context> make_server_context(const TlsFiles& files, bool require_client_auth);

/// Checks, during the next handshake on `stream`, that the peer's certificate names `host`
/// (an IP address is matched against the certificate's IP SANs, a name against its DNS SANs /
/// CN, as RFC 6125 says), and sends `host` as SNI when it is a name. Throws TlsError if OpenSSL
/// refuses the parameter.
void expect_peer_name(ssl::stream<boost::asio::ip::tcp::socket>& stream, const std::string& host);

/// The reason OpenSSL gave for the last failed certificate verification on `stream`
/// ("certificate has expired", "Hostname mismatch", ...), or "" if verification passed.
std::string verify_failure(ssl::stream<boost::asio::ip::tcp::socket>& stream);

}  // namespace zdm::net
