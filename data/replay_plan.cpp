#include "data/replay_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace zdm::data::replay {

std::vector<journal::WriterSegments> writers_of(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw ReplayError("journal directory " + dir.string() + " does not exist");
  return journal::writers_of(dir);
}

bool deletable(bool newest, bool earlier_run, bool delete_all, bool torn, bool torn_accepted) {
  if (torn && !torn_accepted) return false;
  return !newest || earlier_run || delete_all;
}

Survey survey(const std::vector<std::string>& dirs) {
  Survey s;
  for (const auto& dir : dirs) {
    for (auto& w : writers_of(dir)) {
      auto settled = journal_call([&] {
        return journal::survey_writer(w, [&](const journal::MarkedSegment& m) {
          s.segments++;
          s.bytes += m.bytes;
          s.writes += m.scan.writes.size();
          s.settled += m.selection.settled;
          s.replayed += m.selection.replayed;
          s.pending += m.selection.apply.size();
          for (auto i : m.selection.apply) {
            s.pending_by_table[m.scan.writes[i].table]++;
            s.pending_by_version[m.scan.writes[i].version]++;
          }
          if (m.scan.torn) s.torn.push_back({m.path.string(), *m.scan.torn});
        });
      });
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
