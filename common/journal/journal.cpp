#include "common/journal/journal.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace zdm::journal {

namespace fs = std::filesystem;

std::string_view reason_name(Reason r) {
  switch (r) {
    case Reason::kInFlight:
      return "in_flight";
    case Reason::kTargetDisabled:
      return "target_disabled";
    case Reason::kTargetError:
      return "target_error";
    case Reason::kTargetTimeout:
      return "target_timeout";
    case Reason::kTargetUnreachable:
      return "target_unreachable";
    case Reason::kCircuitOpen:
      return "circuit_open";
  }
  return "unknown";
}

namespace {

void put_u8(std::string& o, uint8_t v) {
  o.push_back(static_cast<char>(v));
}
template <class T>
void put_le(std::string& o, T v) {
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) o.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}
void put_str16(std::string& o, std::string_view s) {
  const auto n = static_cast<uint16_t>(std::min<std::size_t>(s.size(), 0xffff));
  put_le<uint16_t>(o, n);
  o.append(s.data(), n);
}

uint32_t crc_of(std::string_view payload) {
  return static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                     reinterpret_cast<const Bytef*>(payload.data()),
                                     static_cast<uInt>(payload.size())));
}

// Appends header + payload, the payload being what was appended to `out` after `start`
// (header space reserved there).
void seal(std::string& out, std::size_t start) {
  const std::string_view payload(out.data() + start + kRecordHeader,
                                 out.size() - start - kRecordHeader);
  const uint32_t fields[2] = {static_cast<uint32_t>(payload.size()), crc_of(payload)};
  char* at = out.data() + start;
  for (uint32_t v : fields)
    for (int i = 0; i < 4; ++i) *at++ = static_cast<char>((v >> (8 * i)) & 0xff);
}

struct Cursor {
  std::string_view s;
  std::size_t at = 0;
  bool need(std::size_t n) const { return s.size() - at >= n; }
  template <class T>
  T le() {
    if (!need(sizeof(T))) throw std::runtime_error("record ends early");
    std::make_unsigned_t<T> u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      u |= static_cast<std::make_unsigned_t<T>>(static_cast<uint8_t>(s[at + i])) << (8 * i);
    at += sizeof(T);
    return static_cast<T>(u);
  }
  std::string bytes(std::size_t n) {
    if (!need(n)) throw std::runtime_error("record ends early");
    std::string out(s.substr(at, n));
    at += n;
    return out;
  }
};

std::system_error io_error(const std::string& what, const fs::path& p) {
  return std::system_error(errno, std::generic_category(), what + " " + p.string());
}

void write_all(int fd, std::string_view data, const fs::path& p) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot write journal segment", p);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// A read-back Write as the parts the encoder takes (views into `w`).
WriteParts parts_of(const Write& w) {
  WriteParts p;
  p.reason = w.reason;
  p.version = w.version;
  p.opcode = w.opcode;
  p.journaled_at_ms = w.journaled_at_ms;
  p.keyspace = w.keyspace;
  p.table = w.table;
  p.body[0] = w.body;
  return p;
}

}  // namespace

void encode_write(uint64_t seq, const WriteParts& w, std::string& out) {
  std::size_t body = 0;
  for (auto part : w.body) body += part.size();
  const std::size_t start = out.size();
  out.reserve(start + kRecordHeader + 32 + w.keyspace.size() + w.table.size() + body);
  out.append(kRecordHeader, '\0');
  put_u8(out, static_cast<uint8_t>(RecordType::kWrite));
  put_le<uint64_t>(out, seq);
  put_u8(out, static_cast<uint8_t>(w.reason));
  put_u8(out, w.version);
  put_u8(out, w.opcode);
  put_le<int64_t>(out, w.journaled_at_ms);
  put_str16(out, w.keyspace);
  put_str16(out, w.table);
  put_le<uint32_t>(out, static_cast<uint32_t>(body));
  for (auto part : w.body) out.append(part);
  seal(out, start);
}

void encode_write(const Write& w, std::string& out) {
  encode_write(w.seq, parts_of(w), out);
}

void encode_settled(uint64_t seq, Settlement how, std::string& out) {
  const std::size_t start = out.size();
  out.append(kRecordHeader, '\0');
  put_u8(out, static_cast<uint8_t>(RecordType::kSettled));
  put_le<uint64_t>(out, seq);
  put_u8(out, static_cast<uint8_t>(how));
  seal(out, start);
}

// ---------------------------------------------------------------------------------------------

Writer::Writer(fs::path dir, int64_t run, int worker, std::shared_ptr<Budget> budget,
               uint64_t segment_bytes)
    : dir_(std::move(dir)),
      run_(run),
      worker_(worker),
      budget_(std::move(budget)),
      segment_bytes_(std::max<uint64_t>(segment_bytes, 4096)) {}

Writer::~Writer() {
  try {
    flush();
  } catch (...) {
  }
  if (fd_ >= 0) ::close(fd_);
}

void Writer::open_segment() {
  if (fd_ >= 0) {
    flush();
    ::close(fd_);
    fd_ = -1;
  }
  char name[64];
  std::snprintf(name, sizeof name, "%013lld-w%d-%06d%s", static_cast<long long>(run_), worker_,
                ++index_, std::string(kSuffix).c_str());
  Segment s;
  s.path = dir_ / name;
  s.first_seq = next_seq_;
  fd_ = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
  if (fd_ < 0) throw io_error("cannot create journal segment", s.path);
  buffer_.append(kMagic);
  s.bytes = kMagic.size();
  budget_->bytes += kMagic.size();
  segments_.push_back(std::move(s));
}

std::optional<uint64_t> Writer::append(Write& w) {
  auto seq = append(parts_of(w));
  if (seq) w.seq = *seq;
  return seq;
}

std::optional<uint64_t> Writer::append(const WriteParts& w) {
  if (segments_.empty() || segments_.back().bytes >= segment_bytes_) {
    if (!segments_.empty() && budget_->used() + kMagic.size() > budget_->max_bytes)
      return std::nullopt;
    open_segment();
    drop_settled_segments();
  }
  const std::size_t before = buffer_.size();
  encode_write(next_seq_, w, buffer_);
  const uint64_t n = buffer_.size() - before;
  if (budget_->used() + n > budget_->max_bytes) {
    buffer_.resize(before);
    return std::nullopt;
  }
  budget_->bytes += n;
  segments_.back().bytes += n;
  segments_.back().open++;
  open_total_++;
  return next_seq_++;
}

void Writer::settle(uint64_t seq, Settlement how) {
  // The segment holding `seq`: the last one whose first seq is not after it.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), seq,
                             [](uint64_t s, const Segment& g) { return s < g.first_seq; });
  if (it == segments_.begin()) return;  // already dropped
  --it;
  if (it->open == 0) return;
  it->open--;
  open_total_--;
  const std::size_t before = buffer_.size();
  encode_settled(seq, how, buffer_);
  const uint64_t n = buffer_.size() - before;
  budget_->bytes += n;
  segments_.back().bytes += n;
  if (it->open == 0 && it + 1 != segments_.end()) drop_settled_segments();
}

void Writer::drop_settled_segments() {
  // Every closed segment with nothing left to replay goes (the one appended to stays).
  for (std::size_t i = 0; i + 1 < segments_.size();) {
    if (segments_[i].open != 0) {
      ++i;
      continue;
    }
    std::error_code ec;
    fs::remove(segments_[i].path, ec);
    budget_->bytes -= std::min<uint64_t>(budget_->bytes.load(), segments_[i].bytes);
    segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void Writer::reclaim_deleted() {
  for (std::size_t i = 0; i + 1 < segments_.size();) {
    std::error_code ec;
    if (fs::exists(segments_[i].path, ec) || ec) {
      ++i;
      continue;
    }
    open_total_ -= std::min(open_total_, segments_[i].open);
    budget_->bytes -= std::min<uint64_t>(budget_->bytes.load(), segments_[i].bytes);
    segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void Writer::flush() {
  if (buffer_.empty() || fd_ < 0) return;
  write_all(fd_, buffer_, segments_.back().path);
  buffer_.clear();
}

void Writer::sync() {
  flush();
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) throw io_error("cannot fdatasync", segments_.back().path);
}

uint64_t Writer::bytes() const {
  uint64_t n = 0;
  for (const auto& s : segments_) n += s.bytes;
  return n;
}

// ---------------------------------------------------------------------------------------------

SegmentScan read_segment(const fs::path& file, uint64_t from) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read journal segment " + file.string());
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < kMagic.size() || std::string_view(data).substr(0, kMagic.size()) != kMagic)
    throw std::runtime_error(file.string() + ": not a zdm journal segment (no " +
                             std::string(kMagic) + " header)");
  SegmentScan scan;
  std::size_t at = std::max<std::size_t>(kMagic.size(), from);
  scan.valid_bytes = at;
  const std::string_view all(data);
  while (at < all.size()) {
    if (all.size() - at < kRecordHeader) {
      scan.torn = "a record header is cut short at byte " + std::to_string(at);
      break;
    }
    Cursor h{all.substr(at, kRecordHeader)};
    const auto len = h.le<uint32_t>();
    const auto crc = h.le<uint32_t>();
    if (len == 0 || len > kMaxPayload || all.size() - at - kRecordHeader < len) {
      scan.torn = "the record at byte " + std::to_string(at) + " runs past the end of the file";
      break;
    }
    const std::string_view payload = all.substr(at + kRecordHeader, len);
    if (crc_of(payload) != crc) {
      scan.torn = "the record at byte " + std::to_string(at) + " fails its CRC";
      break;
    }
    try {
      Cursor c{payload};
      const auto type = c.le<uint8_t>();
      if (type == static_cast<uint8_t>(RecordType::kWrite)) {
        Write w;
        w.seq = c.le<uint64_t>();
        w.reason = static_cast<Reason>(c.le<uint8_t>());
        w.version = c.le<uint8_t>();
        w.opcode = c.le<uint8_t>();
        w.journaled_at_ms = c.le<int64_t>();
        w.keyspace = c.bytes(c.le<uint16_t>());
        w.table = c.bytes(c.le<uint16_t>());
        w.body = c.bytes(c.le<uint32_t>());
        scan.writes.push_back(std::move(w));
      } else if (type == static_cast<uint8_t>(RecordType::kSettled)) {
        scan.settled.push_back(c.le<uint64_t>());
      } else {
        throw std::runtime_error("unknown record type " + std::to_string(type));
      }
    } catch (const std::runtime_error& e) {
      scan.torn = "the record at byte " + std::to_string(at) + " is malformed: " + e.what();
      break;
    }
    at += kRecordHeader + len;
    scan.valid_bytes = at;
  }
  return scan;
}

std::vector<fs::path> list_segments(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == kSuffix) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string writer_of(const fs::path& segment) {
  const std::string name = segment.filename().string();
  const auto dash = name.rfind('-');
  return dash == std::string::npos ? name : name.substr(0, dash);
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr std::string_view kMarkHeader = "zdm-data replayed 1";

std::string errno_text() {
  return std::strerror(errno);
}

// The run of a writer name "<run>-w<worker>": its 13-digit start time, as text (names of one
// format sort as numbers).
std::string run_of(const std::string& writer) {
  const auto w = writer.rfind("-w");
  return w == std::string::npos ? writer : writer.substr(0, w);
}

}  // namespace

fs::path mark_path(const fs::path& segment) {
  return fs::path(segment.string() + std::string(kMarkSuffix));
}

std::string mark_text(const Mark& m) {
  return std::string(kMarkHeader) + " " + std::to_string(m.offset) + " " +
         std::to_string(m.last_seq) + "\n";
}

Mark parse_mark(std::string_view text, const std::string& path) {
  std::istringstream in{std::string(text)};
  std::string a, b, version;
  Mark m;
  if (!(in >> a >> b >> version >> m.offset >> m.last_seq) || a != "zdm-data" || b != "replayed" ||
      version != "1")
    throw std::runtime_error(path + " is not a zdm-data replay checkpoint (expected '" +
                             std::string(kMarkHeader) + " <offset> <last seq>')");
  return m;
}

Mark read_mark(const fs::path& segment) {
  const fs::path p = mark_path(segment);
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(p, ec) && !ec) return {};
    throw std::runtime_error("cannot read " + p.string());
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_mark(text, p.string());
}

uint64_t start_offset(const fs::path& segment, const Mark& m) {
  std::error_code ec;
  const auto size = fs::file_size(segment, ec);
  return ec || m.offset > size ? 0 : m.offset;
}

void write_mark(const fs::path& segment, const Mark& m) {
  const fs::path p = mark_path(segment);
  const std::string tmp = p.string() + ".tmp";
  const std::string text = mark_text(m);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + errno_text());
  const ssize_t n = ::write(fd, text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const std::string why = ok ? "" : errno_text();
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), p.c_str()) != 0) {
    const std::string what = ok ? errno_text() : why;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + p.string() + ": " + what);
  }
}

void remove_segment(const fs::path& segment) {
  std::error_code ec;
  fs::remove(segment, ec);
  if (ec) throw std::runtime_error("cannot delete " + segment.string() + ": " + ec.message());
  fs::remove(mark_path(segment), ec);
}

int remove_orphan_marks(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().string();
    if (!name.ends_with(kMarkSuffix)) continue;
    const fs::path segment = name.substr(0, name.size() - kMarkSuffix.size());
    std::error_code ec2;
    if (fs::exists(segment, ec2) || ec2) continue;
    if (fs::remove(e.path(), ec2)) ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------

std::vector<WriterSegments> writers_of(const fs::path& dir) {
  std::map<std::string, WriterSegments> by_writer;
  for (const auto& seg : list_segments(dir)) {  // sorted: write order per writer
    const std::string w = writer_of(seg);
    auto& ws = by_writer[w];
    ws.writer = w;
    ws.segments.push_back(seg);
  }
  std::vector<WriterSegments> out;
  for (auto& [name, ws] : by_writer) out.push_back(std::move(ws));
  std::string newest;
  for (const auto& w : out) newest = std::max(newest, run_of(w.writer));
  for (auto& w : out) w.earlier_run = run_of(w.writer) < newest;
  return out;
}

Selection select(const SegmentScan& scan, const Mark& mark, const std::set<uint64_t>& settled) {
  Selection s;
  for (std::size_t i = 0; i < scan.writes.size(); ++i) {
    const uint64_t seq = scan.writes[i].seq;
    if (settled.count(seq)) {
      ++s.settled;
    } else if (seq <= mark.last_seq) {
      ++s.replayed;
    } else {
      s.apply.push_back(i);
    }
  }
  return s;
}

namespace {

// Reads `seg` from its mark into `m` (path, bytes, mark, scan), as `bad` says; false when it
// tolerates and the segment is gone (nothing to report).
bool read_marked(const fs::path& seg, BadFiles bad, MarkedSegment& m) {
  m = {};
  m.path = seg;
  std::error_code ec;
  m.bytes = fs::file_size(seg, ec);
  if (ec) m.bytes = 0;
  if (bad == BadFiles::kThrow) {
    m.mark = read_mark(seg);
    m.scan = read_segment(seg, start_offset(seg, m.mark));
    return true;
  }
  try {
    m.mark = read_mark(seg);
  } catch (const std::runtime_error& e) {
    m.mark_error = e.what();
  }
  try {
    m.scan = read_segment(seg, start_offset(seg, m.mark));
  } catch (const std::runtime_error& e) {
    if (!fs::exists(seg, ec) && !ec) return false;
    m.scan = {};
    m.scan.torn = e.what();
  }
  return true;
}

// The counts of summarize for one writer.
Summary summarize_writer(const WriterSegments& w) {
  Summary s;
  survey_writer(
      w,
      [&](const MarkedSegment& m) {
        s.segments++;
        s.bytes += m.bytes;
        s.unsettled += m.selection.apply.size();
        if (m.scan.torn) s.torn++;
      },
      BadFiles::kTolerate);
  return s;
}

void add(Summary& to, const Summary& s) {
  to.segments += s.segments;
  to.bytes += s.bytes;
  to.unsettled += s.unsettled;
  to.torn += s.torn;
}

}  // namespace

std::set<uint64_t> survey_writer(const WriterSegments& w,
                                 const std::function<void(const MarkedSegment&)>& each,
                                 BadFiles bad) {
  std::set<uint64_t> settled;
  MarkedSegment m;
  for (const auto& seg : w.segments)
    if (read_marked(seg, bad, m)) settled.insert(m.scan.settled.begin(), m.scan.settled.end());
  for (const auto& seg : w.segments) {
    if (!read_marked(seg, bad, m)) continue;
    m.selection = select(m.scan, m.mark, settled);
    each(m);
  }
  return settled;
}

Summary summarize(const fs::path& dir) {
  Summary s;
  for (const auto& w : writers_of(dir)) add(s, summarize_writer(w));
  return s;
}

Summary prune(const fs::path& dir) {
  Summary s;
  for (const auto& w : writers_of(dir)) {
    const Summary ws = summarize_writer(w);
    if (ws.unsettled != 0 || ws.torn != 0) {
      add(s, ws);
      continue;
    }
    for (const auto& seg : w.segments) {
      try {
        remove_segment(seg);
      } catch (const std::runtime_error&) {  // still there: still counted
        std::error_code ec;
        const auto n = fs::file_size(seg, ec);
        s.segments++;
        s.bytes += ec ? 0 : n;
      }
    }
  }
  remove_orphan_marks(dir);
  return s;
}

}  // namespace zdm::journal
