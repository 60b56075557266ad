// TLS contexts for both hops of the proxy and for zdm-testcluster: Asio's ssl over OpenSSL, PEM
// files only. No hand-written TLS: this file only loads files and sets verification options,
// with one clear error per problem (the key and the file, or the peer).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

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

/// How a node's way of talking differs from the TLS configured for it: it answered with TLS where
/// none is configured, or did not speak TLS where it is.
enum class TlsMismatch : uint8_t { kNone, kNodeWantsTls, kNodeNotTls };

/// True when `first` (the first bytes a node sent) begin a TLS record: a handshake (0x16, e.g.
/// the ServerHello answering a ClientHello) or an alert (0x15), then major version 3. A CQL
/// answer cannot: its first byte has the response bit (0x80) set.
bool looks_like_tls(std::span<const std::byte> first);

/// True when `first` begin a CQL response header: the response bit and a protocol version (1-5,
/// DSE_V1/DSE_V2), as a node that speaks plain CQL answers whatever it got.
bool looks_like_cql_response(std::span<const std::byte> first);

/// True when the client's TLS handshake error `ec` means the peer does not speak TLS: what it
/// sent back was no TLS record ("wrong version number", "packet length too long", "unknown
/// protocol", an HTTP answer). False for certificate and alert errors (it does speak TLS) and
/// for the ambiguous end of stream (see tls_error_ambiguous).
bool tls_error_means_plain_peer(const boost::system::error_code& ec);

/// True when the TLS handshake error `ec` is an end of stream or reset before any answer: the
/// peer may speak TLS and refuse us, or speak something else and hang up; only a probe tells.
bool tls_error_ambiguous(const boost::system::error_code& ec);

/// The bytes of a TLS ClientHello made by OpenSSL (TLS 1.2 and 1.3 offered, no name), sent to
/// probe whether a node speaks TLS: one that does answers with a TLS record.
std::vector<std::byte> client_hello();

}  // namespace zdm::net
