#include "data/replay_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/cql/messages.h"

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

std::string with_consistency(uint8_t version, uint8_t opcode, std::string body,
                             uint16_t consistency) {
  const cql::BytesView view(reinterpret_cast<const std::byte*>(body.data()), body.size());
  std::optional<std::size_t> at;
  try {
    at = cql::consistency_offset(view, 0, static_cast<cql::Opcode>(opcode), version);
  } catch (const cql::ProtocolError& e) {
    throw ReplayError(std::string("the request body ends before its consistency level (") +
                      e.what() + ")");
  }
  if (!at) throw ReplayError("opcode " + std::to_string(opcode) + " has no consistency level");
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
