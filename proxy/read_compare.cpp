#include "proxy/read_compare.h"

#include <spdlog/spdlog.h>

#include "common/cql/messages.h"
#include "common/cql/version.h"
#include "proxy/wire.h"

namespace zdm::proxy {

namespace {
constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;
void mix(uint64_t& h, const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= std::to_integer<uint8_t>(p[i]);
    h *= kFnvPrime;
  }
}
void mix_int(uint64_t& h, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  const std::byte b[4] = {std::byte(u >> 24), std::byte(u >> 16), std::byte(u >> 8), std::byte(u)};
  mix(h, b, 4);
}
std::string hex(cql::BytesView b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (auto c : b) {
    out.push_back(kDigits[std::to_integer<uint8_t>(c) >> 4]);
    out.push_back(kDigits[std::to_integer<uint8_t>(c) & 0xf]);
  }
  return out;
}
std::string label_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}
}  // namespace

std::optional<RowsDigest> rows_digest(const cql::Bytes& frame, cql::Compression compression,
                                      cql::Bytes& scratch, int max_rows) {
  try {
    if (frame.size() < cql::kHeaderSize || frame_opcode(frame) != cql::Opcode::kResult)
      return std::nullopt;
    const uint8_t version = std::to_integer<uint8_t>(frame[0]) & 0x7f;
    cql::Reader r = response_reader(frame, compression, scratch);
    if (r.read_int() != static_cast<int32_t>(cql::ResultKind::kRows)) return std::nullopt;
    const auto meta = cql::RowsMetadata::decode(r, version);
    RowsDigest d;
    d.rows = r.read_int();
    uint64_t h = kFnvOffset;
    mix_int(h, d.rows);
    for (int32_t row = 0; row < d.rows && row < max_rows; ++row)
      for (int32_t col = 0; col < meta.column_count; ++col) {
        const int32_t n = r.read_int();
        mix_int(h, n < 0 ? -1 : n);
        if (n > 0) {
          const auto cell = r.read_raw(static_cast<std::size_t>(n));
          mix(h, cell.data(), cell.size());
        }
      }
    d.hash = h;
    return d;
  } catch (const cql::ProtocolError&) {
    return std::nullopt;
  }
}

std::string key_of_execute(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                           const std::vector<uint16_t>& pk_indices) {
  try {
    cql::Reader r(body);
    r.read_raw(prefix_end);
    const auto exec = cql::ExecuteMsg::decode(r, version);
    std::string out;
    for (uint16_t i : pk_indices) {
      if (i >= exec.params.values.size()) return "";
      if (!out.empty()) out.push_back(':');
      const auto& v = exec.params.values[i];
      out += v.kind == cql::Value::Kind::kNormal ? hex(v.bytes) : std::string("null");
    }
    return out;
  } catch (const cql::ProtocolError&) {
    return "";
  }
}

void ReadComparisons::record(const std::string& table, bool match, const std::string& key) {
  std::lock_guard lock(mu_);
  auto& s = series_[table];
  if (!s.first) {
    const auto dot = table.find('.');
    const std::string labels =
        "keyspace=\"" + label_value(dot == std::string::npos ? "" : table.substr(0, dot)) +
        "\",table=\"" + label_value(dot == std::string::npos ? table : table.substr(dot + 1)) +
        "\"";
    const std::string p = config_.metrics_prefix + "_proxy_read_";
    s.first = &registry_.counter(
        p + "comparisons_total",
        "Mirrored reads whose answer from the secondary was compared with the primary's", labels);
    s.second = &registry_.counter(
        p + "mismatches_total",
        "Mirrored reads whose rows on the secondary differ from the primary's (read_compare)",
        labels);
  }
  s.first->inc();
  if (match) return;
  s.second->inc();
  const auto now = std::chrono::steady_clock::now();
  if (now - window_ >= std::chrono::minutes(1)) {
    if (suppressed_)
      spdlog::warn("read_compare: {} more mismatching reads in the last minute (not logged)",
                   suppressed_);
    window_ = now;
    logged_ = 0;
    suppressed_ = 0;
  }
  if (logged_ >= kSamplesPerMinute) {
    ++suppressed_;
    return;
  }
  ++logged_;
  spdlog::warn("read_compare: {} differs between primary and secondary for partition key {}", table,
               key.empty() ? "(not known: a simple statement)" : key);
}

}  // namespace zdm::proxy
