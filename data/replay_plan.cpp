#include "data/replay_plan.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace zdm::data::replay {

namespace {

constexpr std::string_view kMarkSuffix = ".replayed";
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

journal::SegmentScan scan(const fs::path& segment, uint64_t from) {
  try {
    return journal::read_segment(segment, from);
  } catch (const std::runtime_error& e) {
    throw ReplayError(e.what());
  }
}

}  // namespace

uint64_t start_offset(const fs::path& segment, const Mark& m) {
  std::error_code ec;
  const auto size = fs::file_size(segment, ec);
  return ec || m.offset > size ? 0 : m.offset;
}

fs::path mark_path(const fs::path& segment) {
  return fs::path(segment.string() + std::string(kMarkSuffix));
}

std::string mark_text(const Mark& m) {
  return fmt::format("{} {} {}\n", kMarkHeader, m.offset, m.last_seq);
}

Mark parse_mark(std::string_view text, const std::string& path) {
  std::istringstream in{std::string(text)};
  std::string a, b, version;
  Mark m;
  if (!(in >> a >> b >> version >> m.offset >> m.last_seq) || a != "zdm-data" || b != "replayed" ||
      version != "1")
    throw ReplayError(path + " is not a zdm-data replay checkpoint (expected '" +
                      std::string(kMarkHeader) + " <offset> <last seq>')");
  return m;
}

Mark read_mark(const fs::path& segment) {
  const fs::path p = mark_path(segment);
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(p, ec) && !ec) return {};
    throw ReplayError("cannot read " + p.string());
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_mark(text, p.string());
}

void write_mark(const fs::path& segment, const Mark& m) {
  const fs::path p = mark_path(segment);
  const std::string tmp = p.string() + ".tmp";
  const std::string text = mark_text(m);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw ReplayError("cannot write " + tmp + ": " + errno_text());
  const ssize_t n = ::write(fd, text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const std::string why = ok ? "" : errno_text();
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), p.c_str()) != 0) {
    const std::string what = ok ? errno_text() : why;
    ::unlink(tmp.c_str());
    throw ReplayError("cannot write " + p.string() + ": " + what);
  }
}

void remove_segment(const fs::path& segment) {
  std::error_code ec;
  fs::remove(segment, ec);
  if (ec) throw ReplayError("cannot delete " + segment.string() + ": " + ec.message());
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

std::vector<WriterSegments> writers_of(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw ReplayError("journal directory " + dir.string() + " does not exist");
  std::map<std::string, WriterSegments> by_writer;
  for (const auto& seg : journal::list_segments(dir)) {  // sorted: write order per writer
    const std::string w = journal::writer_of(seg);
    auto& ws = by_writer[w];
    ws.writer = w;
    ws.dir = dir;
    ws.segments.push_back(seg);
  }
  std::vector<WriterSegments> out;
  for (auto& [name, ws] : by_writer) out.push_back(std::move(ws));
  std::string newest;
  for (const auto& w : out) newest = std::max(newest, run_of(w.writer));
  for (auto& w : out) w.earlier_run = run_of(w.writer) < newest;
  return out;
}

Selection select(const journal::SegmentScan& scan, const Mark& mark,
                 const std::set<uint64_t>& settled) {
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

bool deletable(bool newest, bool earlier_run, bool delete_all, bool torn, bool torn_accepted) {
  if (torn && !torn_accepted) return false;
  return !newest || earlier_run || delete_all;
}

Survey survey(const std::vector<std::string>& dirs) {
  Survey s;
  for (const auto& dir : dirs) {
    for (auto& w : writers_of(dir)) {
      // First pass: the writer's settled seqs (a kSettled follows its kWrite, so the part of
      // the journal past the marks holds every settlement of the writes past the marks).
      std::set<uint64_t> settled;
      for (const auto& seg : w.segments) {
        const auto sc = scan(seg, start_offset(seg, read_mark(seg)));
        settled.insert(sc.settled.begin(), sc.settled.end());
      }
      for (const auto& seg : w.segments) {
        const Mark m = read_mark(seg);
        const auto sc = scan(seg, start_offset(seg, m));
        const Selection sel = select(sc, m, settled);
        std::error_code ec;
        s.segments++;
        s.bytes += fs::file_size(seg, ec);
        s.writes += sc.writes.size();
        s.settled += sel.settled;
        s.replayed += sel.replayed;
        s.pending += sel.apply.size();
        for (auto i : sel.apply) {
          s.pending_by_table[sc.writes[i].table]++;
          s.pending_by_version[sc.writes[i].version]++;
        }
        if (sc.torn) s.torn.push_back({seg.string(), *sc.torn});
      }
      s.writers++;
      s.writer_list.push_back(std::move(w));
      s.settled_seqs.push_back(std::move(settled));
    }
  }
  return s;
}

std::string survey_json(const Survey& s, const std::vector<std::string>& dirs) {
  nlohmann::ordered_json j;
  j["journals"] = dirs;
  j["segments"] = s.segments;
  j["bytes"] = s.bytes;
  j["writers"] = s.writers;
  j["writes"] = s.writes;
  j["pending"] = s.pending;
  j["settled"] = s.settled;
  j["replayed"] = s.replayed;
  j["tables"] = nlohmann::ordered_json::object();
  for (const auto& [t, n] : s.pending_by_table) j["tables"][t] = n;
  j["versions"] = nlohmann::ordered_json::object();
  for (const auto& [v, n] : s.pending_by_version) j["versions"][std::to_string(v)] = n;
  j["torn"] = nlohmann::ordered_json::array();
  for (const auto& t : s.torn) j["torn"].push_back({{"file", t.file}, {"what", t.what}});
  return j.dump() + "\n";
}

std::string survey_text(const Survey& s, const std::vector<std::string>& dirs) {
  std::string names;
  for (const auto& d : dirs) names += (names.empty() ? "" : ", ") + d;
  std::string out = fmt::format("journal {}: {} segments of {} writers, {} bytes\n", names,
                                s.segments, s.writers, s.bytes);
  out += fmt::format("writes: {} to replay, {} settled, {} replayed earlier\n", s.pending,
                     s.settled, s.replayed);
  std::size_t width = 0;
  for (const auto& [t, n] : s.pending_by_table) width = std::max(width, t.size());
  for (const auto& [t, n] : s.pending_by_table)
    out += fmt::format("  {:<{}}  {} to replay\n", t, width, n);
  out += fmt::format("torn tails: {}\n", s.torn.size());
  for (const auto& t : s.torn) out += fmt::format("  {}: {}\n", t.file, t.what);
  return out;
}

namespace {
// Bytes [offset, offset + n) exist in `body`.
bool has(std::string_view body, std::size_t offset, std::size_t n) {
  return offset <= body.size() && body.size() - offset >= n;
}
uint32_t be32(std::string_view b, std::size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<std::size_t>(i)]);
  return v;
}
uint16_t be16(std::string_view b, std::size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) |
                               static_cast<uint8_t>(b[at + 1]));
}
}  // namespace

std::optional<std::size_t> consistency_offset(uint8_t opcode, std::string_view body) {
  std::size_t at = 0;
  if (opcode == 0x07) {  // QUERY: <query: long string><consistency: short>...
    if (!has(body, 0, 4)) return std::nullopt;
    at = 4 + be32(body, 0);
  } else if (opcode == 0x0D) {  // BATCH: <type: byte><n: short><child>...<consistency: short>
    if (!has(body, 0, 3)) return std::nullopt;
    const uint16_t n = be16(body, 1);
    at = 3;
    for (uint16_t c = 0; c < n; ++c) {
      // <kind: byte><query: long string | id: short bytes><n: short><value: bytes>...
      if (!has(body, at, 1)) return std::nullopt;
      const uint8_t kind = static_cast<uint8_t>(body[at++]);
      if (kind == 0) {
        if (!has(body, at, 4)) return std::nullopt;
        at += 4 + be32(body, at);
      } else {
        if (!has(body, at, 2)) return std::nullopt;
        at += 2 + be16(body, at);
      }
      if (!has(body, at, 2)) return std::nullopt;
      const uint16_t values = be16(body, at);
      at += 2;
      for (uint16_t v = 0; v < values; ++v) {
        if (!has(body, at, 4)) return std::nullopt;
        const auto len = static_cast<int32_t>(be32(body, at));
        at += 4 + (len > 0 ? static_cast<std::size_t>(len) : 0);  // null (-1), unset (-2)
      }
    }
  } else {
    return std::nullopt;
  }
  if (!has(body, at, 2)) return std::nullopt;
  return at;
}

std::string with_consistency(uint8_t opcode, std::string body, uint16_t consistency) {
  const auto at = consistency_offset(opcode, body);
  if (!at) throw ReplayError("the request body ends before its consistency level");
  body[*at] = static_cast<char>(consistency >> 8);
  body[*at + 1] = static_cast<char>(consistency & 0xff);
  return body;
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace zdm::data::replay
