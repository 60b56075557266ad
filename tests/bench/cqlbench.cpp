// cqlbench: the benchmarks' pipelined CQL load generator. N connections × M requests in
// flight each, prepared SELECT / INSERT / a mix, closed loop (a new request as each answer
// arrives) or open loop at a fixed rate (latency counted from each request's intended send time,
// so a stall delays every request behind it and shows in the percentiles). Every frame that is
// ready goes out in one write; every read takes all the answers that have arrived. One thread,
// one io_context: the generator's own CPU per request stays small (see --watch-pid and the JSON
// "self_cpu_us_per_req").
//
//   cqlbench --hosts 127.25.2.1 --setup --connections 4 --inflight 256 --duration 5
//   cqlbench --hosts 127.25.1.1 --workload write --rate 20000 --duration 600 --interval 10
//   cqlbench --hosts 127.25.1.1 --idle 1000 --hold 30      # idle connections, for RSS
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/cql/messages.h"
#include "common/net/node_connection.h"
#include "common/net/stream.h"
#include "common/net/tls.h"
#include "tests/bench/histogram.h"
#include "tests/bench/workload.h"

namespace zdm::bench {
namespace {

namespace asio = boost::asio;
namespace po = boost::program_options;
using net::awaitable;
using net::error_code;
using net::nothrow;
using net::tcp;
using Clock = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}
Clock::time_point at_ns(int64_t ns) {
  return Clock::time_point(std::chrono::nanoseconds(ns));
}

// CPU time of a process in ns: the sum of its threads' run time (schedstat, ns resolution),
// or utime + stime from /proc/PID/stat (clock ticks) where schedstat is missing. -1 if gone.
int64_t process_cpu_ns(const std::string& pid) {
  std::string base = "/proc/" + pid + "/task";
  if (DIR* d = opendir(base.c_str())) {
    int64_t sum = 0;
    bool any = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(base + "/" + e->d_name + "/schedstat");
      int64_t ns = 0;
      if (f >> ns) sum += ns, any = true;
    }
    closedir(d);
    if (any) return sum;
  }
  std::ifstream f("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  auto close = line.rfind(')');
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  int64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return (utime + stime) * (1000000000LL / sysconf(_SC_CLK_TCK));
}

// Frames for Conn::exchange. (A braced list in a co_await expression trips GCC 12: "array used
// as initializer".)
std::vector<Bytes> list_of(Bytes a) {
  std::vector<Bytes> v;
  v.push_back(std::move(a));
  return v;
}
std::vector<Bytes> list_of(Bytes a, Bytes b) {
  std::vector<Bytes> v = list_of(std::move(a));
  v.push_back(std::move(b));
  return v;
}

// CPU time of `pid` and every process descended from it (socat forks one per connection).
int64_t tree_cpu_ns(const std::string& pid) {
  if (pid == "self") return process_cpu_ns(pid);
  std::multimap<std::string, std::string> children;  // ppid -> pid
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
      std::string line;
      if (!std::getline(f, line)) continue;
      auto close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(line.substr(close + 2));
      std::string state, ppid;
      if (rest >> state >> ppid) children.emplace(ppid, e->d_name);
    }
    closedir(d);
  }
  int64_t total = process_cpu_ns(pid);
  if (total < 0) return -1;
  std::vector<std::string> todo{pid};
  while (!todo.empty()) {
    std::string p = todo.back();
    todo.pop_back();
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) {
      int64_t ns = process_cpu_ns(it->second);
      if (ns > 0) total += ns;
      todo.push_back(it->second);
    }
  }
  return total;
}

struct Options {
  std::vector<std::string> hosts;
  int port = 9042;
  int connections = 1;
  int inflight = 1;
  std::string workload = "read";
  double write_fraction = 0.5;
  double duration = 5, warmup = 1, drain = 5, interval = 0;
  uint64_t requests = 0;
  double rate = 0;
  int64_t keys = 1000;
  std::size_t value_size = 32;
  int version = 4;
  cql::Compression compression = cql::Compression::kNone;
  net::TlsFiles tls{"", "", "", "--tls-ca", "--tls-cert", "--tls-key"};
  std::string username, password;
  bool setup = false;
  bool reconnect = false;
  int idle = 0;
  double hold = 10;
  std::vector<std::string> watch_pids;
  std::string json_path;
  double max_time = 0;
  Schema schema;
};

class Bench;

/// One client connection: the handshake and setup as request/response exchanges, then the
/// load: a reader that takes every answer that arrived and refills the pipeline, and a writer
/// for what a non-blocking write could not send at once.
class Conn {
 public:
  Conn(Bench& bench, asio::io_context& ioc, int index);

  awaitable<bool> open(bool prepare);
  /// Sends `frames` in one write and waits for an answer on each of their stream ids (setup
  /// only: allocation is fine here). Bodies come back decompressed, without the response
  /// prefix. nullopt on a lost connection.
  awaitable<std::optional<std::vector<cql::Frame>>> exchange(const std::vector<Bytes>& frames);
  void start_load();

  bool has_free() const { return !free_.empty(); }
  std::size_t in_flight() const { return slots_.size() - free_.size(); }
  std::size_t waiting() const { return backlog_.size(); }
  /// A request whose latency counts from `intended_ns`.
  void issue(int64_t intended_ns);
  /// Open loop: a request due at `intended_ns`, sent now or when a stream id frees.
  void enqueue(int64_t intended_ns);
  void flush();
  void close();
  bool closed() const { return closed_; }
  bool ready() const { return ready_ && !closed_; }
  const std::string& why() const { return why_; }
  RequestBuilder& builder() { return *builder_; }

 private:
  awaitable<void> reader();
  awaitable<void> writer();
  void handle(const std::byte* frame, uint32_t body_len, int64_t now);
  void fail(const std::string& why);
  /// --reconnect: a new connection, handshake and prepare, with a growing delay, until it works
  /// or the run ends; then the requests waiting for it are sent.
  awaitable<void> reconnect();

  Bench& bench_;
  int index_;
  std::string host_;
  // Replaced on reconnect; each coroutine holds the one it works on, so a socket outlives the
  // operations pending on it.
  std::shared_ptr<net::NodeConnection> node_;
  uint64_t gen_ = 0;           // bumped on reconnect: coroutines of an older connection stop
  bool ready_ = false;         // handshake and prepare done, requests may be sent
  bool reconnecting_ = false;  // one reconnect() at a time
  std::shared_ptr<asio::ssl::context> tls_;
  asio::steady_timer wake_;
  Bytes in_;
  std::size_t in_len_ = 0;
  Bytes out_, writing_;
  bool writer_busy_ = false;
  std::vector<int64_t> slots_;  // stream id -> send (or intended) time, ns; -1 when free
  std::vector<uint8_t> ops_;    // stream id -> Op
  std::vector<int16_t> free_;
  std::deque<int64_t> backlog_;  // open loop: intended times waiting for a stream id
  std::unique_ptr<RequestBuilder> builder_;
  bool closed_ = false;
  std::string why_;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)), ioc_(1), control_(ioc_), ticker_(ioc_) {
    rng_ ^= static_cast<uint64_t>(now_ns());
    ts_base_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  }

  int run();
  const Options& options() const { return o_; }
  asio::io_context& ioc() { return ioc_; }

  // Called by connections.
  Op next_op() {
    if (o_.workload == "read") return Op::kRead;
    if (o_.workload == "write") return Op::kWrite;
    return static_cast<double>(next_rand() % 1000000) < o_.write_fraction * 1e6 ? Op::kWrite
                                                                                : Op::kRead;
  }
  int64_t next_key() { return static_cast<int64_t>(next_rand() % static_cast<uint64_t>(o_.keys)); }
  int64_t next_timestamp() { return ts_base_us_ + static_cast<int64_t>(++ts_count_); }
  /// Closed loop: may another request be sent now?
  bool may_issue() const {
    return !stopping_ && o_.rate <= 0 && (o_.requests == 0 || issued_ < o_.requests);
  }
  void issued() { ++issued_; }
  void completed(Op op, bool ok, int64_t latency_ns, int64_t now, const std::byte* body,
                 uint32_t body_len, uint8_t flags);
  void connection_lost(const std::string& why, uint64_t in_flight) {
    if (stopping_ || stopped_) return;
    ++lost_connections_;
    if (measuring_) lost_in_flight_ += in_flight, interval_lost_ += in_flight;
    if (lost_reasons_.size() < 5) lost_reasons_.push_back(why);
  }
  void reconnected() { ++reconnects_; }
  bool stopping() const { return stopping_ || stopped_; }
  void backlog_overflow() { ++backlog_overflow_; }

 private:
  uint64_t next_rand() {  // xorshift64*
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 2685821657736338717ULL;
  }
  awaitable<void> main();
  awaitable<void> idle_main();
  awaitable<void> idle_one();
  awaitable<bool> populate(Conn& c);
  awaitable<void> open_loop();
  awaitable<void> sleep_until(int64_t ns) {
    control_.expires_at(at_ns(ns));
    error_code ec;
    co_await control_.async_wait(nothrow(ec));
  }
  void start_window(int64_t now);
  void end_window(int64_t now);
  void print_interval(int64_t now);
  nlohmann::json result() const;

  Options o_;
  asio::io_context ioc_;
  asio::steady_timer control_, ticker_;
  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
  int64_t ts_base_us_ = 0;
  uint64_t ts_count_ = 0;
  uint64_t issued_ = 0;
  bool stopping_ = false, stopped_ = false;
  int exit_code_ = 0;
  std::string failure_;

  // Measurement window [ws_, we_].
  bool measuring_ = false;
  int64_t ws_ = 0, we_ = 0;
  Histogram hist_, interval_hist_;
  uint64_t ok_ = 0, reads_ = 0, writes_ = 0, errors_ = 0, unexpected_ = 0, completed_total_ = 0;
  uint64_t interval_ok_ = 0, interval_errors_ = 0;
  int64_t interval_start_ = 0;
  std::map<int32_t, uint64_t> error_codes_;
  std::string first_error_;
  uint64_t lost_connections_ = 0, backlog_overflow_ = 0, lost_in_flight_ = 0, reconnects_ = 0;
  uint64_t interval_lost_ = 0;
  std::vector<std::string> lost_reasons_;
  std::vector<int64_t> watch_start_, watch_end_;
  int64_t self_start_ = 0, self_end_ = 0;
  int idle_open_ = 0, idle_failed_ = 0, idle_running_ = 0;
  std::size_t idle_next_ = 0;
};

// ---------------------------------------------------------------------------------------------

Conn::Conn(Bench& bench, asio::io_context& ioc, int index)
    : bench_(bench), index_(index), node_(std::make_shared<net::NodeConnection>(ioc)), wake_(ioc) {
  const auto& hosts = bench.options().hosts;
  host_ = hosts[static_cast<std::size_t>(index) % hosts.size()];
  wake_.expires_at(Clock::time_point::max());
}

void Conn::fail(const std::string& why) {
  if (closed_) return;
  why_ = why;
  // The requests in flight on it are lost: counted, their stream ids freed.
  uint64_t lost = 0;
  for (std::size_t id = 0; id < slots_.size(); ++id) {
    if (slots_[id] < 0) continue;
    slots_[id] = -1;
    free_.push_back(static_cast<int16_t>(id));
    ++lost;
  }
  bench_.connection_lost("connection " + std::to_string(index_) + " to " + host_ + ": " + why,
                         lost);
  close();
  out_.clear();  // requests of the lost connection, already counted as lost
  if (bench_.options().reconnect && !bench_.stopping() && !reconnecting_) {
    reconnecting_ = true;
    asio::co_spawn(bench_.ioc(), reconnect(), asio::detached);
  }
}

awaitable<void> Conn::reconnect() {
  auto delay = std::chrono::milliseconds(100);
  asio::steady_timer t(bench_.ioc());
  while (!bench_.stopping()) {
    t.expires_after(delay);
    error_code ec;
    co_await t.async_wait(nothrow(ec));
    if (bench_.stopping()) co_return;
    node_ = std::make_shared<net::NodeConnection>(bench_.ioc());
    ++gen_;
    closed_ = false;
    if (co_await open(true)) {
      reconnecting_ = false;
      bench_.reconnected();
      start_load();
      while (has_free() && !backlog_.empty()) {
        issue(backlog_.front());
        backlog_.pop_front();
      }
      while (has_free() && bench_.may_issue()) issue(now_ns());
      flush();
      co_return;
    }
    node_->close();
    closed_ = true;
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
  reconnecting_ = false;
}

void Conn::close() {
  if (closed_) return;
  closed_ = true;
  ready_ = false;
  node_->close();
  wake_.cancel();
}

awaitable<bool> Conn::open(bool prepare) {
  const Options& o = bench_.options();
  error_code ec;
  tcp::endpoint ep(asio::ip::make_address(host_, ec), static_cast<uint16_t>(o.port));
  if (ec) {
    why_ = "bad address " + host_;
    co_return false;
  }
  net::HopSettings hop;
  hop.connect_timeout = std::chrono::seconds(10);
  if (!o.tls.ca_path.empty()) {
    tls_ = net::make_client_context(o.tls);
    hop.tls = tls_;
  }
  const auto node = node_;
  std::string why;
  if (!co_await node->open(ep, host_, hop, why)) {
    why_ = why.starts_with("TLS handshake") ? why : "connect: " + why;
    co_return false;
  }
  const uint8_t v = static_cast<uint8_t>(o.version);
  net::HandshakeSettings hs;
  hs.version = v;
  hs.compression = o.compression;
  hs.driver_name = "cqlbench";
  hs.driver_version = ZDM_VERSION;
  hs.credentials = {o.username, o.password};
  hs.timeout = std::chrono::seconds(30);
  auto shake = co_await node->handshake(hs);
  if (!shake) {
    why_ = shake.failure == net::HandshakeResult::Failure::kNoCredentials
               ? "the server wants authentication: --username/--password"
               : shake.why;
    co_return false;
  }
  if (!prepare) {
    Bytes().swap(in_);
    in_len_ = 0;
    co_return true;
  }
  auto r = co_await exchange(
      list_of(compress_frame(prepare_frame(v, 1, o.schema.select()), o.compression),
              compress_frame(prepare_frame(v, 2, o.schema.insert()), o.compression)));
  if (!r) co_return false;
  std::vector<Bytes> ids(2);
  for (int i = 0; i < 2; ++i) {
    const cql::Frame& p = (*r)[static_cast<std::size_t>(i)];
    cql::Reader rd(p.body);
    if (p.header.opcode != cql::Opcode::kResult) {
      why_ = "PREPARE answered with " + cql::opcode_name(p.header.opcode);
      if (p.header.opcode == cql::Opcode::kError)
        why_ += ": " + cql::ErrorMsg::decode(rd).message + " (run with --setup to create " +
                o.schema.keyspace + "." + o.schema.table + ")";
      co_return false;
    }
    auto m = cql::ResultMsg::decode(rd, v);
    auto* prepared = std::get_if<cql::PreparedResult>(&m.body);
    if (!prepared) {
      why_ = "PREPARE answered with a RESULT that is not Prepared";
      co_return false;
    }
    ids[static_cast<std::size_t>(i)] = prepared->id;
  }
  builder_ = std::make_unique<RequestBuilder>(v, o.compression, ids[0], ids[1], o.value_size);
  co_return true;
}

awaitable<std::optional<std::vector<cql::Frame>>> Conn::exchange(const std::vector<Bytes>& frames) {
  const Options& o = bench_.options();
  std::map<int16_t, std::size_t> want;
  Bytes all;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    want[cql::frame_stream(frames[i].data())] = i;
    all.insert(all.end(), frames[i].begin(), frames[i].end());
  }
  error_code ec;
  asio::const_buffer buf(all.data(), all.size());
  const auto node = node_;
  net::Stream* s = &node->stream();
  co_await s->write(std::span(&buf, 1), ec);
  if (ec) {
    why_ = "write: " + ec.message();
    co_return std::nullopt;
  }
  std::vector<cql::Frame> got(frames.size());
  std::size_t left = frames.size();
  if (in_.size() < 16 * 1024) in_.resize(16 * 1024);
  cql::FrameDecoder decoder;
  asio::steady_timer deadline(s->socket().get_executor(), std::chrono::seconds(30));
  deadline.async_wait([node](error_code e) {
    if (!e) node->stream().close();
  });
  while (left > 0) {
    cql::Frame f;
    while (left > 0 && decoder.next(f)) {
      if (f.header.opcode == cql::Opcode::kEvent) continue;
      auto it = want.find(f.header.stream);
      if (it == want.end()) continue;
      if (f.header.flags & cql::flag::kCompression)
        f.body = cql::decompress_body(o.compression, f.body);
      cql::Reader rd(f.body);
      cql::skip_response_prefix(rd, f.header.flags);
      f.body.erase(f.body.begin(), f.body.begin() + static_cast<std::ptrdiff_t>(rd.position()));
      got[it->second] = std::move(f);
      want.erase(it);
      --left;
    }
    if (left == 0) break;
    std::size_t n = co_await s->read_some(asio::buffer(in_), ec);
    if (ec) {
      why_ = ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor
                 ? "no answer within 30 s"
                 : "read: " + ec.message();
      co_return std::nullopt;
    }
    decoder.feed(BytesView(in_.data(), n));
  }
  deadline.cancel();
  co_return got;
}

void Conn::start_load() {
  const Options& o = bench_.options();
  if (slots_.empty()) {
    slots_.assign(static_cast<std::size_t>(o.inflight), -1);
    ops_.assign(slots_.size(), 0);
    for (int i = o.inflight - 1; i >= 0; --i) free_.push_back(static_cast<int16_t>(i));
  }
  in_.resize(64 * 1024);
  in_len_ = 0;
  out_.clear();
  writing_.clear();
  writer_busy_ = false;
  out_.reserve(64 * 1024);
  writing_.reserve(64 * 1024);
  error_code ec;
  if (!node_->stream().tls()) node_->stream().socket().non_blocking(true, ec);
  ready_ = true;
  auto on_end = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "cqlbench: connection coroutine failed: " << ex.what() << "\n";
    }
  };
  asio::co_spawn(bench_.ioc(), reader(), on_end);
  asio::co_spawn(bench_.ioc(), writer(), on_end);
}

void Conn::issue(int64_t intended_ns) {
  int16_t id = free_.back();
  free_.pop_back();
  Op op = bench_.next_op();
  slots_[static_cast<std::size_t>(id)] = intended_ns;
  ops_[static_cast<std::size_t>(id)] = static_cast<uint8_t>(op);
  builder_->append(op, id, bench_.next_key(), op == Op::kWrite ? bench_.next_timestamp() : 0, out_);
  bench_.issued();
}

void Conn::enqueue(int64_t intended_ns) {
  if (ready() && backlog_.empty() && has_free()) return issue(intended_ns);
  if (backlog_.size() >= 1000000) return bench_.backlog_overflow();
  backlog_.push_back(intended_ns);
}

void Conn::flush() {
  // Only a connection that is up writes requests (not one in its handshake: the ticker flushes
  // every connection).
  if (out_.empty() || writer_busy_ || !ready()) return;
  if (!node_->stream().tls()) {
    // Write at once when the socket takes it all (the common case): no hand-off, no wake-up.
    error_code ec;
    std::size_t n = node_->stream().socket().write_some(asio::buffer(out_), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again)
      return fail("write: " + ec.message());
    if (n == out_.size()) {
      out_.clear();
      return;
    }
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  writer_busy_ = true;
  wake_.cancel_one();
}

awaitable<void> Conn::writer() {
  const auto node = node_;
  net::Stream* s = &node->stream();
  const uint64_t gen = gen_;
  while (gen == gen_ && !closed_) {
    if (out_.empty() || !writer_busy_) {
      writer_busy_ = false;
      error_code ec;
      co_await wake_.async_wait(nothrow(ec));
      continue;
    }
    std::swap(out_, writing_);
    error_code ec;
    asio::const_buffer buf(writing_.data(), writing_.size());
    co_await s->write(std::span(&buf, 1), ec);
    if (gen != gen_) co_return;
    writing_.clear();
    if (ec) {
      fail("write: " + ec.message());
      co_return;
    }
    if (out_.empty()) writer_busy_ = false;
  }
}

awaitable<void> Conn::reader() {
  const auto node = node_;
  net::Stream* s = &node->stream();
  const uint64_t gen = gen_;
  while (gen == gen_ && !closed_) {
    if (in_.size() - in_len_ < 16 * 1024) in_.resize(in_.size() * 2);
    error_code ec;
    std::size_t n =
        co_await s->read_some(asio::buffer(in_.data() + in_len_, in_.size() - in_len_), ec);
    if (gen != gen_) co_return;
    if (ec) {
      fail(ec == asio::error::eof ? "closed by the server" : "read: " + ec.message());
      co_return;
    }
    in_len_ += n;
    const int64_t now = now_ns();
    std::size_t pos = 0;
    while (in_len_ - pos >= cql::kHeaderSize) {
      const std::byte* f = in_.data() + pos;
      uint32_t len = (std::to_integer<uint32_t>(f[5]) << 24) |
                     (std::to_integer<uint32_t>(f[6]) << 16) |
                     (std::to_integer<uint32_t>(f[7]) << 8) | std::to_integer<uint32_t>(f[8]);
      if (len > cql::kMaxBodyLength) {
        fail("corrupt frame header");
        co_return;
      }
      if (in_len_ - pos < cql::kHeaderSize + len) {
        if (cql::kHeaderSize + len > in_.size()) in_.resize(cql::kHeaderSize + len + 16 * 1024);
        break;
      }
      handle(f, len, now);
      pos += cql::kHeaderSize + len;
    }
    if (pos > 0) {
      std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
      in_len_ -= pos;
    }
    // Refill the pipeline: requests due (open loop) first, then new ones (closed loop).
    while (has_free() && !backlog_.empty()) {
      issue(backlog_.front());
      backlog_.pop_front();
    }
    while (has_free() && bench_.may_issue()) issue(now);
    flush();
  }
}

void Conn::handle(const std::byte* f, uint32_t body_len, int64_t now) {
  int16_t stream = cql::frame_stream(f);
  if (stream < 0) return;  // an event
  auto id = static_cast<std::size_t>(stream);
  if (id >= slots_.size() || slots_[id] < 0) {
    bench_.completed(Op::kRead, false, 0, now, nullptr, 0, 0);  // an answer nobody asked for
    return;
  }
  const int64_t sent = slots_[id];
  slots_[id] = -1;
  free_.push_back(stream);
  const auto opcode = static_cast<cql::Opcode>(std::to_integer<uint8_t>(f[4]));
  const uint8_t flags = std::to_integer<uint8_t>(f[1]);
  bench_.completed(static_cast<Op>(ops_[id]), opcode == cql::Opcode::kResult, now - sent, now,
                   f + cql::kHeaderSize, body_len, flags);
}

// ---------------------------------------------------------------------------------------------

void Bench::completed(Op op, bool ok, int64_t latency_ns, int64_t now, const std::byte* body,
                      uint32_t body_len, uint8_t flags) {
  ++completed_total_;
  if (!measuring_ || now < ws_) return;
  if (body == nullptr) {
    ++unexpected_;
    return;
  }
  if (ok) {
    // The RESULT kind, when the body is plain: Rows for a read, Void for a write.
    if (!(flags & (cql::flag::kCompression | cql::flag::kTracing | cql::flag::kWarning |
                   cql::flag::kCustomPayload)) &&
        body_len >= 4) {
      uint32_t kind =
          (std::to_integer<uint32_t>(body[0]) << 24) | (std::to_integer<uint32_t>(body[1]) << 16) |
          (std::to_integer<uint32_t>(body[2]) << 8) | std::to_integer<uint32_t>(body[3]);
      if (kind != (op == Op::kRead ? 2u : 1u)) ++unexpected_;
    }
    ++ok_;
    ++interval_ok_;
    ++(op == Op::kRead ? reads_ : writes_);
    hist_.record(static_cast<uint64_t>(latency_ns));
    interval_hist_.record(static_cast<uint64_t>(latency_ns));
    return;
  }
  ++errors_;
  ++interval_errors_;
  int32_t code = -1;
  try {
    Bytes plain;
    BytesView b(body, body_len);
    if (flags & cql::flag::kCompression) {
      plain = cql::decompress_body(o_.compression, b);
      b = plain;
    }
    cql::Reader r(b);
    cql::skip_response_prefix(r, flags);
    auto e = cql::ErrorMsg::decode(r);
    code = static_cast<int32_t>(e.code);
    if (first_error_.empty()) first_error_ = e.message;
  } catch (const std::exception& e) {
    if (first_error_.empty()) first_error_ = std::string("undecodable answer: ") + e.what();
  }
  ++error_codes_[code];
}

void Bench::start_window(int64_t now) {
  measuring_ = true;
  ws_ = interval_start_ = now;
  hist_.reset();
  interval_hist_.reset();
  ok_ = reads_ = writes_ = errors_ = unexpected_ = interval_ok_ = interval_errors_ = 0;
  error_codes_.clear();
  watch_start_.clear();
  for (const auto& p : o_.watch_pids) watch_start_.push_back(tree_cpu_ns(p));
  self_start_ = process_cpu_ns("self");
}

void Bench::end_window(int64_t now) {
  we_ = now;
  measuring_ = false;
  watch_end_.clear();
  for (const auto& p : o_.watch_pids) watch_end_.push_back(tree_cpu_ns(p));
  self_end_ = process_cpu_ns("self");
}

void Bench::print_interval(int64_t now) {
  double secs = static_cast<double>(now - interval_start_) / 1e9;
  std::size_t in_flight = 0, waiting = 0;
  int connected = 0;
  for (const auto& c : conns_) {
    in_flight += c->in_flight();
    waiting += c->waiting();
    connected += c->ready() ? 1 : 0;
  }
  std::printf(
      "INTERVAL t=%.1f ops_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%llu "
      "lost=%llu in_flight=%zu waiting=%zu connected=%d\n",
      static_cast<double>(now - ws_) / 1e9, static_cast<double>(interval_ok_) / secs,
      static_cast<double>(interval_hist_.quantile(0.5)) / 1e3,
      static_cast<double>(interval_hist_.quantile(0.99)) / 1e3,
      static_cast<double>(interval_hist_.quantile(0.999)) / 1e3,
      static_cast<double>(interval_hist_.max()) / 1e3,
      static_cast<unsigned long long>(interval_errors_),
      static_cast<unsigned long long>(interval_lost_), in_flight, waiting, connected);
  std::fflush(stdout);
  interval_hist_.reset();
  interval_ok_ = interval_errors_ = interval_lost_ = 0;
  interval_start_ = now;
}

awaitable<bool> Bench::populate(Conn& c) {
  const uint8_t v = static_cast<uint8_t>(o_.version);
  auto r = co_await c.exchange(
      list_of(compress_frame(query_frame(v, 1, o_.schema.create_keyspace()), o_.compression)));
  if (!r || (*r)[0].header.opcode != cql::Opcode::kResult) co_return false;
  r = co_await c.exchange(
      list_of(compress_frame(query_frame(v, 1, o_.schema.create_table()), o_.compression)));
  if (!r || (*r)[0].header.opcode != cql::Opcode::kResult) co_return false;
  co_return true;
}

awaitable<void> Bench::open_loop() {
  const double interval = 1e9 / o_.rate;
  const int64_t t0 = now_ns();
  uint64_t k = 0;
  while (!stopping_) {
    const int64_t now = now_ns();
    for (;;) {
      int64_t due = t0 + static_cast<int64_t>(static_cast<double>(k) * interval);
      if (due > now || (o_.requests > 0 && k >= o_.requests)) break;
      // To the next connection that is up (a driver spreads over live hosts); if none is, the
      // request waits on its own for a reconnect.
      Conn* c = conns_[k % conns_.size()].get();
      for (std::size_t i = 1; !c->ready() && i < conns_.size(); ++i)
        if (conns_[(k + i) % conns_.size()]->ready()) c = conns_[(k + i) % conns_.size()].get();
      c->enqueue(due);
      ++k;
    }
    for (auto& c : conns_) c->flush();
    if (o_.requests > 0 && k >= o_.requests) co_return;
    int64_t next = t0 + static_cast<int64_t>(static_cast<double>(k) * interval);
    ticker_.expires_at(at_ns(next));
    error_code ec;
    co_await ticker_.async_wait(nothrow(ec));
  }
}

awaitable<void> Bench::idle_one() {
  while (idle_next_ < conns_.size()) {
    Conn& c = *conns_[idle_next_++];
    if (co_await c.open(false)) {
      ++idle_open_;
    } else if (++idle_failed_ <= 3) {
      std::cerr << "cqlbench: idle connection: " << c.why() << "\n";
    }
  }
  if (--idle_running_ == 0) ticker_.cancel();
}

awaitable<void> Bench::idle_main() {
  // Opens --idle connections (64 handshakes at a time), holds them, then closes them.
  for (int i = 0; i < o_.idle; ++i) conns_.push_back(std::make_unique<Conn>(*this, ioc_, i));
  idle_running_ = std::min(o_.idle, 64);
  for (int i = 0, n = idle_running_; i < n; ++i) asio::co_spawn(ioc_, idle_one(), asio::detached);
  ticker_.expires_at(Clock::time_point::max());
  error_code ec;
  co_await ticker_.async_wait(nothrow(ec));
  std::printf("IDLE_READY open=%d failed=%d\n", idle_open_, idle_failed_);
  std::fflush(stdout);
  if (!stopping_) co_await sleep_until(now_ns() + static_cast<int64_t>(o_.hold * 1e9));
  int still = 0;
  for (auto& c : conns_) {
    if (!c->closed()) ++still;
    c->close();
  }
  std::printf("IDLE_DONE open=%d failed=%d still_open=%d\n", idle_open_, idle_failed_, still);
  if (idle_failed_ > 0 || still != idle_open_) exit_code_ = 1;
  stopped_ = true;
  ioc_.stop();
}

awaitable<void> Bench::main() {
  // Connect and prepare, a few at a time.
  for (int i = 0; i < o_.connections; ++i) conns_.push_back(std::make_unique<Conn>(*this, ioc_, i));
  if (o_.setup) {
    Conn setup(*this, ioc_, 0);
    if (!(co_await setup.open(false)) || !(co_await populate(setup))) {
      failure_ = "setup (schema) failed: " + setup.why();
      exit_code_ = 1;
      ioc_.stop();
      co_return;
    }
    setup.close();
  }
  for (auto& c : conns_) {
    if (!(co_await c->open(true))) {
      failure_ = "cannot open a connection to " + o_.hosts[0] + ": " + c->why();
      exit_code_ = 1;
      ioc_.stop();
      co_return;
    }
  }
  if (o_.setup) {
    // One row per key, 256 in flight on the first connection.
    Conn& c = *conns_[0];
    for (int64_t k = 0; k < o_.keys;) {
      std::vector<Bytes> frames;
      for (int s = 0; s < 256 && k < o_.keys; ++s, ++k) {
        Bytes f;
        c.builder().append(Op::kWrite, static_cast<int16_t>(s), k, next_timestamp(), f);
        frames.push_back(std::move(f));
      }
      auto r = co_await c.exchange(frames);
      bool ok = r.has_value();
      for (std::size_t i = 0; ok && i < r->size(); ++i)
        ok = (*r)[i].header.opcode == cql::Opcode::kResult;
      if (!ok) {
        failure_ = "populating the table failed: " + c.why();
        exit_code_ = 1;
        ioc_.stop();
        co_return;
      }
    }
  }
  const int64_t t0 = now_ns();
  const bool counted = o_.requests > 0;
  for (auto& c : conns_) c->start_load();
  if (counted) start_window(t0);  // a fixed number of requests: all of them count
  if (o_.rate > 0) {
    asio::co_spawn(ioc_, open_loop(), asio::detached);
  } else {
    for (auto& c : conns_) {
      while (c->has_free() && may_issue()) c->issue(now_ns());
      c->flush();
    }
  }
  const int64_t warm_end = counted ? t0 : t0 + static_cast<int64_t>(o_.warmup * 1e9);
  const int64_t end = warm_end + static_cast<int64_t>(o_.duration * 1e9);
  // The control loop: window start and end, interval lines, the end of a counted run.
  int64_t next_interval =
      o_.interval > 0 ? warm_end + static_cast<int64_t>(o_.interval * 1e9) : INT64_MAX;
  while (!stopping_) {
    int64_t now = now_ns();
    bool all_lost = !o_.reconnect;
    for (auto& c : conns_) all_lost = all_lost && c->closed();
    if (all_lost) break;
    if (!measuring_ && !counted && now >= warm_end && we_ == 0) start_window(now);
    if (measuring_ && now >= next_interval) {
      print_interval(now);
      next_interval += static_cast<int64_t>(o_.interval * 1e9);
    }
    if (counted ? completed_total_ >= o_.requests : now >= end) break;
    int64_t wake = counted ? now + 2000000 : std::min({end, next_interval, now + 50000000});
    if (!measuring_ && !counted) wake = std::min(wake, warm_end);
    co_await sleep_until(wake);
  }
  const int64_t stop = now_ns();
  if (measuring_) end_window(stop);
  if (we_ == 0) we_ = stop;
  stopping_ = true;
  ticker_.cancel();
  // Drain: wait for the answers still in flight (not counted), up to --drain seconds.
  const int64_t drain_end = stop + static_cast<int64_t>(o_.drain * 1e9);
  for (;;) {
    std::size_t n = 0;
    for (auto& c : conns_)
      if (!c->closed()) n += c->in_flight();
    if (n == 0 || now_ns() >= drain_end) break;
    co_await sleep_until(now_ns() + 2000000);
  }
  stopped_ = true;
  for (auto& c : conns_) c->close();
  ioc_.stop();
}

nlohmann::json Bench::result() const {
  double secs = we_ > ws_ ? static_cast<double>(we_ - ws_) / 1e9 : 0;
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  nlohmann::json j;
  j["hosts"] = o_.hosts;
  j["port"] = o_.port;
  j["workload"] = o_.workload;
  j["connections"] = o_.connections;
  j["inflight"] = o_.inflight;
  j["mode"] = o_.rate > 0 ? "open" : "closed";
  if (o_.rate > 0) j["rate"] = o_.rate;
  j["compression"] = o_.compression == cql::Compression::kNone ? "none" : "lz4";
  j["tls"] = !o_.tls.ca_path.empty();
  j["protocol_version"] = o_.version;
  j["seconds"] = secs;
  j["ok"] = ok_;
  j["reads"] = reads_;
  j["writes"] = writes_;
  j["errors"] = errors_;
  j["unexpected"] = unexpected_;
  nlohmann::json codes = nlohmann::json::object();
  for (const auto& [code, n] : error_codes_) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(code));
    codes[code < 0 ? "undecodable" : buf] = n;
  }
  j["error_codes"] = codes;
  if (!first_error_.empty()) j["first_error"] = first_error_;
  j["lost_connections"] = lost_connections_;
  j["lost_in_flight"] = lost_in_flight_;
  j["reconnects"] = reconnects_;
  j["lost_reasons"] = lost_reasons_;
  j["backlog_overflow"] = backlog_overflow_;
  j["ops_per_s"] = secs > 0 ? static_cast<double>(ok_) / secs : 0;
  j["latency_us"] = {{"mean", hist_.mean() / 1e3},        {"p50", us(hist_.quantile(0.5))},
                     {"p90", us(hist_.quantile(0.9))},    {"p99", us(hist_.quantile(0.99))},
                     {"p999", us(hist_.quantile(0.999))}, {"max", us(hist_.max())}};
  const double done = static_cast<double>(ok_ + errors_);
  nlohmann::json cpu = nlohmann::json::object();
  for (std::size_t i = 0; i < o_.watch_pids.size() && i < watch_end_.size(); ++i) {
    if (watch_start_[i] < 0 || watch_end_[i] < 0 || done == 0) continue;
    cpu[o_.watch_pids[i]] = {
        {"cpu_us_per_req", static_cast<double>(watch_end_[i] - watch_start_[i]) / 1e3 / done},
        {"cpu_util",
         secs > 0 ? static_cast<double>(watch_end_[i] - watch_start_[i]) / 1e9 / secs : 0}};
  }
  j["watched"] = cpu;
  if (done > 0 && self_end_ > self_start_) {
    j["self_cpu_us_per_req"] = static_cast<double>(self_end_ - self_start_) / 1e3 / done;
    j["self_cpu_util"] = static_cast<double>(self_end_ - self_start_) / 1e9 / secs;
  }
  return j;
}

int Bench::run() {
  asio::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([this](error_code ec, int) {
    if (ec) return;
    if (o_.idle > 0) {
      stopping_ = true;
      control_.cancel();
      return;
    }
    // Stop early: the window ends now.
    stopping_ = true;
    control_.cancel();
  });
  // A hard bound on the whole run, whatever happens.
  double bound = o_.max_time > 0
                     ? o_.max_time
                     : (o_.idle > 0 ? o_.hold + 120 : o_.warmup + o_.duration + o_.drain + 120);
  asio::steady_timer watchdog(ioc_, std::chrono::milliseconds(static_cast<int64_t>(bound * 1000)));
  watchdog.async_wait([this, bound](error_code ec) {
    if (ec) return;
    std::cerr << "cqlbench: still running after " << bound << " s (--max-time), giving up\n";
    exit_code_ = 3;
    ioc_.stop();
  });
  auto on_end = [this](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      failure_ = ex.what();
      exit_code_ = 1;
      ioc_.stop();
    }
  };
  asio::co_spawn(ioc_, o_.idle > 0 ? idle_main() : main(), on_end);
  ioc_.run();
  if (!failure_.empty()) std::cerr << "cqlbench: " << failure_ << "\n";
  if (o_.idle > 0) return exit_code_;
  if (exit_code_ == 0 || exit_code_ == 3) {
    nlohmann::json j = result();
    const auto& lat = j["latency_us"];
    std::printf(
        "cqlbench: %s %s-loop, %d conn x %d in flight, %.1f s: %.0f ops/s, p50 %.1f us, p99 %.1f "
        "us, p999 %.1f us, max %.1f us; %llu ok, %llu errors, %llu unexpected, %llu connections "
        "lost (%llu requests in flight on them), %llu reconnects\n",
        o_.workload.c_str(), o_.rate > 0 ? "open" : "closed", o_.connections, o_.inflight,
        j["seconds"].get<double>(), j["ops_per_s"].get<double>(), lat["p50"].get<double>(),
        lat["p99"].get<double>(), lat["p999"].get<double>(), lat["max"].get<double>(),
        static_cast<unsigned long long>(ok_), static_cast<unsigned long long>(errors_),
        static_cast<unsigned long long>(unexpected_),
        static_cast<unsigned long long>(lost_connections_),
        static_cast<unsigned long long>(lost_in_flight_),
        static_cast<unsigned long long>(reconnects_));
    if (!first_error_.empty()) std::printf("cqlbench: first error: %s\n", first_error_.c_str());
    for (const auto& r : lost_reasons_) std::printf("cqlbench: lost %s\n", r.c_str());
    if (!o_.json_path.empty()) {
      std::ofstream f(o_.json_path);
      f << j.dump() << "\n";
    }
  }
  return exit_code_;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace
}  // namespace zdm::bench

int main(int argc, char** argv) {
  using namespace zdm::bench;
  Options o;
  std::string hosts, compression = "none", watch;
  po::options_description desc("cqlbench: a pipelined CQL load generator (protocol v3/v4)");
  desc.add_options()("help,h", "show this help")(
      "hosts", po::value(&hosts)->default_value("127.0.0.1"),
      "comma-separated addresses; connection i goes to host i mod n")(
      "port", po::value(&o.port)->default_value(9042), "CQL port")(
      "connections,c", po::value(&o.connections)->default_value(1), "connections")(
      "inflight,m", po::value(&o.inflight)->default_value(1),
      "requests in flight per connection (stream ids, at most 32768)")(
      "workload,w", po::value(&o.workload)->default_value("read"),
      "read (prepared SELECT), write (prepared INSERT) or mixed")(
      "write-fraction", po::value(&o.write_fraction)->default_value(0.5),
      "share of writes in the mixed workload")(
      "duration,d", po::value(&o.duration)->default_value(5), "measured seconds")(
      "warmup", po::value(&o.warmup)->default_value(1), "seconds before measuring")(
      "requests,n", po::value(&o.requests)->default_value(0),
      "send exactly this many requests and measure all of them (no warm-up; ends when all are "
      "answered)")("rate,r", po::value(&o.rate)->default_value(0),
                   "open loop: requests per second over all connections (0 = closed loop)")(
      "keys", po::value(&o.keys)->default_value(1000), "distinct partition keys, chosen uniformly")(
      "value-size", po::value(&o.value_size)->default_value(32), "bytes of each written blob")(
      "protocol-version", po::value(&o.version)->default_value(4), "3 or 4")(
      "compression", po::value(&compression)->default_value("none"), "none or lz4")(
      "tls-ca", po::value(&o.tls.ca_path), "PEM CA: TLS on, the server's certificate checked")(
      "tls-cert", po::value(&o.tls.cert_path), "PEM client certificate (mutual TLS)")(
      "tls-key", po::value(&o.tls.key_path), "PEM key of --tls-cert")(
      "username", po::value(&o.username), "PLAIN authentication")("password",
                                                                  po::value(&o.password), "")(
      "keyspace", po::value(&o.schema.keyspace)->default_value("zdmbench"),
      "keyspace of the table")(
      "setup", po::bool_switch(&o.setup),
      "create the keyspace and table (k bigint PRIMARY KEY, v blob) and write every key first")(
      "reconnect", po::bool_switch(&o.reconnect),
      "open a lost connection again (100 ms, doubling to 1 s, until the run ends); its requests "
      "in flight count as lost, open-loop requests go to the connections that are up")(
      "idle", po::value(&o.idle)->default_value(0),
      "open this many connections (handshake only), print IDLE_READY, hold them --hold seconds")(
      "hold", po::value(&o.hold)->default_value(10), "seconds to hold --idle connections")(
      "interval", po::value(&o.interval)->default_value(0),
      "print an INTERVAL line (ops/s, p50/p99/p999) every this many seconds")(
      "watch-pid", po::value(&watch),
      "comma-separated pids whose CPU per request is reported (from /proc; a pid counts with "
      "the processes it forked)")("drain", po::value(&o.drain)->default_value(5),
                                  "seconds to wait for answers in flight at the end")(
      "max-time", po::value(&o.max_time)->default_value(0),
      "abort after this many seconds whatever happens (default: the run's length + 120)")(
      "json", po::value(&o.json_path), "write the result as JSON to this file");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc;
      return 0;
    }
    po::notify(vm);
    o.hosts = split(hosts);
    if (o.hosts.empty()) throw std::invalid_argument("--hosts names no address");
    if (o.connections < 1) throw std::invalid_argument("--connections must be at least 1");
    if (o.inflight < 1 || o.inflight > 32768)
      throw std::invalid_argument("--inflight must be 1-32768");
    if (o.workload != "read" && o.workload != "write" && o.workload != "mixed")
      throw std::invalid_argument("--workload must be read, write or mixed");
    if (o.version != 3 && o.version != 4) throw std::invalid_argument("--protocol-version: 3 or 4");
    if (compression == "lz4") {
      o.compression = zdm::cql::Compression::kLz4;
    } else if (compression != "none") {
      throw std::invalid_argument("--compression must be none or lz4");
    }
    if (o.keys < 1) throw std::invalid_argument("--keys must be at least 1");
    o.watch_pids = split(watch);
  } catch (const std::exception& e) {
    std::cerr << "cqlbench: " << e.what() << "\n";
    return 2;
  }
  raise_fd_limit();
  try {
    Bench bench(std::move(o));
    return bench.run();
  } catch (const std::exception& e) {
    std::cerr << "cqlbench: " << e.what() << "\n";
    return 1;
  }
}
