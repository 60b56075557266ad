#include "proxy/system_queries.h"

#include <openssl/evp.h>

#include "common/net/node_connection.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::Opcode;

namespace {

Bytes md5(std::string_view s) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), digest, &n, EVP_md5(), nullptr);
  return Bytes(reinterpret_cast<std::byte*>(digest), reinterpret_cast<std::byte*>(digest) + n);
}

}  // namespace

Bytes local_select(const cql::Header& h, LocalTable table, const cql::StatementInfo& info,
                   std::string_view query, const cql::QueryParameters* params,
                   const SystemSnapshot* snapshot, Cluster snapshot_cluster,
                   const VirtualTopology& topology) {
  if (!snapshot)
    return cql::encode_error(
        h.version, h.stream, cql::ErrorCode::kServerError,
        std::string("ZDM proxy has no ") + cluster_name(snapshot_cluster) + " topology yet");
  std::optional<SystemFilter> filter;
  std::optional<Bytes> value;
  try {
    filter = parse_system_filter(query);
    if (filter && filter->marker < 0) {
      value = filter_value(filter->column, filter->literal);
    } else if (filter && params &&
               static_cast<std::size_t>(filter->marker) < params->values.size()) {
      value = params->values[static_cast<std::size_t>(filter->marker)].bytes;
    }
  } catch (const std::invalid_argument& e) {
    return cql::encode_error(h.version, h.stream, cql::ErrorCode::kInvalid, e.what());
  }
  auto answer =
      answer_system_select(table, info, *snapshot, topology, filter ? filter->column : "", value);
  if (auto* rows = std::get_if<cql::RowsResult>(&answer)) {
    if (params && (params->flags & cql::query_flag::kSkipMetadata))
      rows->metadata.flags |= cql::rows_flag::kNoMetadata;
    cql::ResultMsg msg{std::move(*rows)};
    return cql::encode_message(h.version, true, h.stream, Opcode::kResult, msg);
  }
  return cql::encode_message(h.version, true, h.stream, Opcode::kError,
                             std::get<cql::ErrorMsg>(answer));
}

Bytes local_prepare(const cql::Header& h, LocalTable table, const cql::StatementInfo& info,
                    const std::string& query, const std::string& keyspace,
                    const SystemSnapshot* snapshot, const VirtualTopology& topology,
                    PreparedCache& cache) {
  if (!snapshot)
    return cql::encode_error(h.version, h.stream, cql::ErrorCode::kServerError,
                             "ZDM proxy has no topology yet");
  auto answer = answer_system_select(table, info, *snapshot, topology);
  if (auto* e = std::get_if<cql::ErrorMsg>(&answer))
    return cql::encode_message(h.version, true, h.stream, Opcode::kError, *e);
  cql::PreparedResult pr;
  pr.id = md5(query + keyspace);
  pr.result_metadata = std::get<cql::RowsResult>(answer).metadata;
  std::string spec;
  for (const auto& c : pr.result_metadata.columns) spec += c.name + ";";
  pr.result_metadata_id = md5(spec);
  std::optional<SystemFilter> filter;
  try {
    filter = parse_system_filter(query);
  } catch (const std::invalid_argument& e) {
    return cql::encode_error(h.version, h.stream, cql::ErrorCode::kInvalid, e.what());
  }
  if (filter && filter->marker >= 0) {
    const bool inet = filter->column == "peer" || filter->column.ends_with("address");
    pr.metadata.columns.push_back(cql::ColumnSpec{
        "system", table == LocalTable::kSystemLocal ? "local" : "peers", filter->column,
        cql::DataType::of(inet ? cql::TypeId::kInet : cql::TypeId::kVarchar)});
    if (filter->column == "peer" || filter->column == "key") pr.metadata.pk_indices = {0};
  }
  cache.put_local(pr.id, LocalStatement{table, info, query});
  return cql::encode_message(h.version, true, h.stream, Opcode::kResult, cql::ResultMsg{pr});
}

std::optional<Bytes> uuid_in(std::string_view text) {
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  static constexpr int kGroups[] = {8, 4, 4, 4, 12};
  for (std::size_t i = 0; i + 36 <= text.size(); ++i) {
    std::string digits;
    std::size_t j = i;
    bool ok = true;
    for (int g = 0; g < 5 && ok; ++g) {
      for (int k = 0; k < kGroups[g] && ok; ++k, ++j) ok = hexval(text[j]) >= 0;
      for (std::size_t k = j - static_cast<std::size_t>(kGroups[g]); ok && k < j; ++k)
        digits += text[k];
      if (ok && g < 4) ok = text[j++] == '-';
    }
    if (!ok) continue;
    Bytes out;
    for (std::size_t k = 0; k < 32; k += 2)
      out.push_back(static_cast<std::byte>(hexval(digits[k]) * 16 + hexval(digits[k + 1])));
    return out;
  }
  return std::nullopt;
}

void TraceRouting::record(const Bytes& frame, cql::Compression compression, Bytes& scratch,
                          Cluster cluster) {
  try {
    cql::BytesView b = net::frame_body(frame, compression, scratch);
    if (b.size() >= 16) {
      traced_.emplace_back(Bytes(b.begin(), b.begin() + 16), cluster);
      if (traced_.size() > 256) traced_.pop_front();
    }
  } catch (const cql::ProtocolError&) {
    // A traced answer whose body cannot be read is not remembered: a system_traces read of that
    // session goes where untraced reads go (the primary).
  }
}

void TraceRouting::route(std::string_view query, Decision& d) const {
  auto id = uuid_in(query);
  if (!id) return;
  for (auto it = traced_.rbegin(); it != traced_.rend(); ++it) {
    if (it->first != *id) continue;
    d.destination = only(it->second);
    d.metric = read_metric(it->second);
    return;
  }
}

}  // namespace zdm::proxy
