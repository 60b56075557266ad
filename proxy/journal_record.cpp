#include "proxy/journal_record.h"

#include "common/cql/messages.h"
#include "common/cql/version.h"

namespace zdm::proxy {

namespace {
std::string as_string(cql::BytesView b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
}  // namespace

cql::BytesView execute_parameters(cql::BytesView body, std::size_t prefix_end, uint8_t version) {
  cql::Reader r(body);
  r.read_raw(prefix_end);
  r.read_short_bytes_view();                                             // <id>
  if (cql::uses_result_metadata_id(version)) r.read_short_bytes_view();  // <result_metadata_id>
  return r.rest();
}

std::string replayable_execute(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                               std::string_view query) {
  const auto params = execute_parameters(body, prefix_end, version);
  cql::Bytes out;
  cql::Writer w(out);
  w.write_long_string(query);
  out.insert(out.end(), params.begin(), params.end());
  return as_string(out);
}

std::optional<std::string> replayable_batch(
    cql::BytesView body, std::size_t prefix_end, uint8_t version,
    const std::function<std::optional<std::string>(cql::BytesView id)>& query_of) {
  cql::Reader r(body.subspan(prefix_end));
  cql::BatchMsg batch = cql::BatchMsg::decode(r, version);
  for (auto& child : batch.children) {
    if (!child.prepared) continue;
    auto q = query_of(child.id);
    if (!q) return std::nullopt;
    child.prepared = false;
    child.query = std::move(*q);
    child.id.clear();
  }
  cql::Bytes out;
  cql::Writer w(out);
  batch.encode(w, version);
  return as_string(out);
}

}  // namespace zdm::proxy
