#include "common/net/node_connection.h"

#include "common/cql/version.h"
#include "common/net/tls.h"

namespace zdm::net {

cql::Bytes Credentials::token() const {
  cql::Bytes out;
  out.reserve(username.size() + password.size() + 2);
  out.push_back(std::byte{0});
  for (char c : username) out.push_back(static_cast<std::byte>(c));
  out.push_back(std::byte{0});
  for (char c : password) out.push_back(static_cast<std::byte>(c));
  return out;
}

std::optional<Credentials> Credentials::parse(cql::BytesView token) {
  std::string t(reinterpret_cast<const char*>(token.data()), token.size());
  auto first = t.find('\0');
  if (first == std::string::npos) return std::nullopt;
  auto second = t.find('\0', first + 1);
  if (second == std::string::npos) return std::nullopt;
  return Credentials{t.substr(first + 1, second - first - 1), t.substr(second + 1)};
}

NodeConnection::NodeConnection(asio::io_context& ioc) : ioc_(ioc), stream_(ioc), writer_(stream_) {}

awaitable<bool> NodeConnection::open(const tcp::endpoint& ep, const std::string& host,
                                     const HopSettings& hop, std::string& why) {
  node_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  struct State {
    bool done = false, expired = false;
  };
  auto state = std::make_shared<State>();
  auto self = shared_from_this();
  asio::steady_timer watchdog(ioc_);
  watchdog.expires_after(hop.connect_timeout);
  watchdog.async_wait([self, state](error_code e) {
    if (e || state->done) return;
    state->expired = true;
    self->stream_.close();
  });
  error_code ec;
  co_await stream_.socket().async_connect(ep, nothrow(ec));
  if (!ec) stream_.socket().set_option(tcp::no_delay(true), ec);
  if (!ec && hop.tls) {
    stream_.use_tls(*hop.tls);
    if (hop.verify_hostname) expect_peer_name(*stream_.tls_stream(), host);
    co_await stream_.tls_stream()->async_handshake(ssl::stream_base::client, nothrow(ec));
    tls_error_ = ec;
    if (ec && !state->expired) {
      std::string reason = verify_failure(*stream_.tls_stream());
      why = "TLS handshake: " + ec.message() + (reason.empty() ? "" : " (" + reason + ")");
    }
  } else if (ec && !state->expired) {
    why = ec.message();
  }
  state->done = true;
  watchdog.cancel();
  if (state->expired)
    why = "timed out after " + std::to_string(hop.connect_timeout.count()) + " ms";
  if (ec || state->expired) {
    close();
    co_return false;
  }
  asio::co_spawn(
      ioc_,
      [self]() -> awaitable<void> {
        auto e = co_await self->writer_.run();
        if (e && !self->closed_) self->on_write_error(e);
      },
      asio::detached);
  co_return true;
}

awaitable<std::optional<cql::Frame>> NodeConnection::exchange(cql::Bytes frame,
                                                              std::chrono::milliseconds timeout) {
  const int16_t stream = cql::frame_stream(frame.data());
  send(std::move(frame));
  co_return co_await receive(stream, timeout);
}

awaitable<std::optional<cql::Frame>> NodeConnection::receive(int16_t stream,
                                                             std::chrono::milliseconds timeout) {
  struct State {
    bool done = false, expired = false;
  };
  auto state = std::make_shared<State>();
  auto self = shared_from_this();
  asio::steady_timer watchdog(ioc_);
  watchdog.expires_after(timeout);
  watchdog.async_wait([self, state](error_code e) {
    if (e || state->done) return;
    state->expired = true;
    self->stream_.close();
  });
  std::optional<cql::Frame> result;
  error_code ec;
  while (!result && !ec && !closed_) {
    cql::Header h;
    cql::Bytes raw;
    try {
      while (frames_.next_raw(h, raw)) {
        if (h.stream != stream) continue;  // events, late answers
        cql::Bytes scratch;
        cql::BytesView body = frame_body(raw, compression_, scratch);
        result = cql::Frame{h, cql::Bytes(body.begin(), body.end())};
        result->header.flags &= static_cast<uint8_t>(~cql::flag::kCompression);
        result->header.length = static_cast<uint32_t>(result->body.size());
        if (cql::uses_segments(version_) &&
            (h.opcode == cql::Opcode::kReady || h.opcode == cql::Opcode::kAuthenticate)) {
          frames_.enable_segments(compression_);
          writer_.enable_segments(compression_);
        }
        break;
      }
    } catch (const cql::ProtocolError&) {
      break;
    }
    if (result) break;
    auto data = co_await stream_.receive(ec);
    if (ec) break;
    for (std::size_t i = 0; i < data.size() && first_size_ < first_.size(); ++i)
      first_[first_size_++] = data[i];
    frames_.feed(data);
  }
  state->done = true;
  watchdog.cancel();
  co_return result;
}

awaitable<std::optional<cql::Frame>> NodeConnection::authenticate(
    const std::string& authenticator, const Credentials& creds, int16_t stream,
    std::chrono::milliseconds timeout) {
  auto auth_response = [&](const cql::Bytes& token) {
    cql::Bytes body;
    cql::Writer w(body);
    w.write_bytes(token);
    return cql::encode_frame(cql::Header{version_, false, 0, stream, cql::Opcode::kAuthResponse, 0},
                             body);
  };
  if (authenticator == kDseAuthenticator) {
    auto challenge = co_await exchange(auth_response(cql::to_bytes("PLAIN")), timeout);
    if (!challenge || challenge->header.opcode != cql::Opcode::kAuthChallenge) co_return challenge;
  }
  auto resp = co_await exchange(auth_response(creds.token()), timeout);
  co_return resp;
}

awaitable<HandshakeResult> NodeConnection::handshake(const HandshakeSettings& settings) {
  using Failure = HandshakeResult::Failure;
  HandshakeResult out;
  const uint8_t v = settings.version;
  cql::Compression compression = settings.compression;
  if (cql::uses_segments(v) && compression == cql::Compression::kSnappy)
    compression = cql::Compression::kNone;
  set_protocol(v, compression);
  auto fail = [&](Failure f, const char* step, std::string why) {
    out.failure = f;
    out.step = step;
    out.why = std::move(why);
  };
  // An exchange's answer, or the failure of having none (closed before the timeout, or not).
  auto answered = [&](const std::optional<cql::Frame>& f, const char* step,
                      std::chrono::steady_clock::time_point sent) {
    if (f) return true;
    out.message = "no answer";
    if (std::chrono::steady_clock::now() - sent < settings.timeout)
      fail(Failure::kClosed, step, std::string("the node closed the connection after ") + step);
    else
      fail(Failure::kNoAnswer, step,
           std::string("no answer to ") + step + " within " +
               std::to_string(settings.timeout.count()) + " ms");
    return false;
  };
  // An ERROR answer: PROTOCOL_ERROR means the version was refused.
  auto refused = [&](const cql::Frame& f, const char* step) {
    if (f.header.opcode != cql::Opcode::kError) return false;
    out.message = cql::error_text(f, &out.error);
    fail(out.error == cql::ErrorCode::kProtocolError ? Failure::kVersionRefused : Failure::kError,
         step, std::string(step) + " refused: " + out.message);
    return true;
  };
  try {
    if (settings.ask_options) {
      const auto sent = std::chrono::steady_clock::now();
      auto sup = co_await exchange(cql::encode_empty(v, false, 0, cql::Opcode::kOptions),
                                   settings.timeout);
      if (!answered(sup, "OPTIONS", sent) || refused(*sup, "OPTIONS")) co_return out;
      if (sup->header.opcode != cql::Opcode::kSupported) {
        out.message = cql::opcode_name(sup->header.opcode);
        fail(Failure::kUnexpected, "OPTIONS",
             "unexpected answer to OPTIONS: " + cql::opcode_name(sup->header.opcode));
        co_return out;
      }
      cql::Reader r(sup->body);
      cql::skip_response_prefix(r, sup->header.flags);
      out.supported = cql::SupportedMsg::decode(r).options;
    }
    cql::StartupMsg startup{{{"CQL_VERSION", "3.0.0"}}};
    if (!settings.driver_name.empty()) {
      startup.options["DRIVER_NAME"] = settings.driver_name;
      startup.options["DRIVER_VERSION"] = settings.driver_version;
    }
    if (compression != cql::Compression::kNone)
      startup.options["COMPRESSION"] = std::string(cql::compression_name(compression));
    const auto sent = std::chrono::steady_clock::now();
    auto resp = co_await exchange(cql::encode_message(v, false, 0, cql::Opcode::kStartup, startup),
                                  settings.timeout);
    if (!answered(resp, "STARTUP", sent) || refused(*resp, "STARTUP")) co_return out;
    if (resp->header.opcode == cql::Opcode::kReady) co_return out;
    if (resp->header.opcode != cql::Opcode::kAuthenticate) {
      out.message = cql::opcode_name(resp->header.opcode);
      fail(Failure::kUnexpected, "STARTUP",
           "unexpected answer to STARTUP: " + cql::opcode_name(resp->header.opcode));
      co_return out;
    }
    cql::Reader r(resp->body);
    cql::skip_response_prefix(r, resp->header.flags);
    out.authenticator = cql::AuthenticateMsg::decode(r).authenticator;
    if (settings.credentials.empty()) {
      fail(Failure::kNoCredentials, "STARTUP",
           "the node requires authentication (" + out.authenticator +
               ") but no username/password was given");
      co_return out;
    }
    auto done = co_await authenticate(out.authenticator, settings.credentials, 0, settings.timeout);
    if (!done || done->header.opcode != cql::Opcode::kAuthSuccess) {
      if (!done)
        out.message = "no answer";
      else if (done->header.opcode == cql::Opcode::kError)
        out.message = cql::error_text(*done, &out.error);
      else
        out.message = cql::opcode_name(done->header.opcode);
      fail(done ? Failure::kAuthRefused : Failure::kNoAnswer, "AUTH_RESPONSE",
           "the credentials of user '" + settings.credentials.username +
               "' were refused: " + out.message);
    }
  } catch (const cql::ProtocolError& e) {
    fail(Failure::kUnexpected, out.step[0] ? out.step : "STARTUP",
         std::string("unreadable answer: ") + e.what());
  }
  co_return out;
}

awaitable<TlsMismatch> NodeConnection::diagnose_tls(const tcp::endpoint& ep, const HopSettings& hop,
                                                    std::chrono::milliseconds timeout) {
  if (hop.tls) {
    if (!tls_error_) co_return TlsMismatch::kNone;
    if (tls_error_means_plain_peer(tls_error_)) co_return TlsMismatch::kNodeNotTls;
    if (!tls_error_ambiguous(tls_error_)) co_return TlsMismatch::kNone;
    auto answer = co_await first_answer(
        ioc_, ep, cql::encode_empty(4, false, 0, cql::Opcode::kOptions), timeout);
    co_return looks_like_cql_response(answer) ? TlsMismatch::kNodeNotTls : TlsMismatch::kNone;
  }
  if (looks_like_tls(std::span<const std::byte>(first_.data(), first_size_)))
    co_return TlsMismatch::kNodeWantsTls;
  auto answer = co_await first_answer(ioc_, ep, client_hello(), timeout);
  co_return looks_like_tls(answer) ? TlsMismatch::kNodeWantsTls : TlsMismatch::kNone;
}

awaitable<std::vector<std::byte>> first_answer(asio::io_context& ioc, const tcp::endpoint& ep,
                                               std::vector<std::byte> hello,
                                               std::chrono::milliseconds timeout) {
  auto socket = std::make_shared<tcp::socket>(ioc);
  auto expired = std::make_shared<bool>(false);
  asio::steady_timer watchdog(ioc);
  watchdog.expires_after(timeout);
  watchdog.async_wait([socket, expired](error_code e) {
    if (e) return;
    *expired = true;
    error_code ignored;
    socket->close(ignored);
  });
  std::vector<std::byte> out;
  error_code ec;
  co_await socket->async_connect(ep, nothrow(ec));
  if (!ec && !*expired) co_await asio::async_write(*socket, asio::buffer(hello), nothrow(ec));
  std::array<std::byte, 16> buf;
  while (!ec && !*expired && out.size() < 2) {
    const std::size_t n = co_await socket->async_read_some(asio::buffer(buf), nothrow(ec));
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }
  watchdog.cancel();
  error_code ignored;
  socket->close(ignored);
  co_return out;
}

void NodeConnection::close() {
  if (closed_) return;
  closed_ = true;
  stream_.close();
  writer_.close();
}

}  // namespace zdm::net
