#include "proxy/rewrite.h"

#include "common/cql/version.h"

#include <algorithm>
#include <chrono>

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;

int64_t write_timestamp_us() {
  thread_local int64_t last = 0;
  int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  last = std::max(now, last + 1);
  return last;
}

WritePlan plan_write(const cql::StatementScan& scan, bool replace_calls) {
  WritePlan plan;
  plan.timestamp_allowed = !scan.conditional && !scan.counter_update;
  if (!replace_calls) return plan;
  for (std::size_t k = 0; k < scan.calls.size(); ++k)
    plan.generated.push_back(
        {scan.calls[k].marker_index, scan.calls[k].value,
         scan.named_markers ? "zdm_generated_" + std::to_string(k) : std::string()});
  return plan;
}

namespace detail {

std::string with_literals(std::string_view query, const cql::StatementScan& scan, int64_t now_us) {
  std::vector<std::string> literals;
  for (const auto& c : scan.calls)
    literals.push_back(cql::literal(c.value, cql::generate(c.value, now_us)));
  return cql::replace_calls(query, scan.calls, literals);
}

void complete_values(std::vector<cql::Value>& values, std::vector<std::string>* names,
                     const WritePlan& plan, int64_t now_us) {
  for (const auto& g : plan.generated) {
    std::size_t at = std::min(static_cast<std::size_t>(g.index), values.size());
    if (names && !names->empty()) {
      // Named values may come in any order: ours go last, by name.
      values.push_back(cql::Value::of(cql::generate(g.value, now_us)));
      names->push_back(g.name);
      continue;
    }
    values.insert(values.begin() + static_cast<std::ptrdiff_t>(at),
                  cql::Value::of(cql::generate(g.value, now_us)));
  }
}

std::optional<Bytes> finish_batch(BytesView body, std::size_t prefix_end, uint8_t version,
                                  cql::BatchMsg& batch, bool changed, bool timestamp_allowed,
                                  int64_t now_us) {
  if (timestamp_allowed && !(batch.flags & cql::query_flag::kDefaultTimestamp)) {
    batch.flags |= cql::query_flag::kDefaultTimestamp;
    batch.timestamp = now_us;
    changed = true;
  }
  if (!changed) return std::nullopt;
  Bytes out(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
  cql::Writer w(out);
  batch.encode(w, version);
  return out;
}

}  // namespace detail

namespace {

// Sets the default timestamp if absent (and allowed); true if it did.
bool set_timestamp(cql::QueryParameters& p, bool allowed, int64_t now_us) {
  if (!allowed || (p.flags & cql::query_flag::kDefaultTimestamp)) return false;
  p.flags |= cql::query_flag::kDefaultTimestamp;
  p.timestamp = now_us;
  return true;
}

// The flags of <query_parameters> starting at `at`, without decoding the rest.
uint32_t params_flags(BytesView body, std::size_t at, uint8_t version) {
  cql::Reader r(body.subspan(at));
  r.read_consistency();
  return cql::uses_int_query_flags(version) ? static_cast<uint32_t>(r.read_int()) : r.read_byte();
}

}  // namespace

bool may_have_calls(std::string_view cql) {
  for (std::size_t i = cql.find('('); i != std::string_view::npos; i = cql.find('(', i + 1)) {
    std::size_t j = i + 1;
    while (j < cql.size() && (cql[j] == ' ' || cql[j] == '\t' || cql[j] == '\n')) ++j;
    if (j < cql.size() && cql[j] == ')') return true;
  }
  return false;
}

bool has_default_timestamp(BytesView body, std::size_t params_at, uint8_t version) {
  return params_flags(body, params_at, version) & cql::query_flag::kDefaultTimestamp;
}

std::optional<Bytes> rewrite_query(BytesView body, std::size_t prefix_end, uint8_t version,
                                   const cql::StatementScan& scan, int64_t now_us) {
  const bool ts_allowed = !scan.conditional && !scan.counter_update;
  cql::Reader r(body.subspan(prefix_end));
  std::string query = r.read_long_string();
  const std::size_t params_at = prefix_end + r.position();
  if (scan.calls.empty() && (!ts_allowed || (params_flags(body, params_at, version) &
                                             cql::query_flag::kDefaultTimestamp)))
    return std::nullopt;  // the common case: nothing to do, nothing decoded
  cql::QueryMsg q;
  q.query = scan.calls.empty() ? std::move(query) : detail::with_literals(query, scan, now_us);
  q.params = cql::QueryParameters::decode(r, version);
  set_timestamp(q.params, ts_allowed, now_us);
  Bytes out(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
  cql::Writer w(out);
  q.encode(w, version);
  return out;
}

std::optional<Bytes> rewrite_execute(BytesView body, std::size_t prefix_end, uint8_t version,
                                     const WritePlan& plan, int64_t now_us) {
  cql::Reader r(body.subspan(prefix_end));
  cql::ExecuteMsg e;
  e.id = r.read_short_bytes();
  if (cql::uses_result_metadata_id(version)) e.result_metadata_id = r.read_short_bytes();
  const std::size_t params_at = prefix_end + r.position();
  if (plan.generated.empty() &&
      (!plan.timestamp_allowed ||
       (params_flags(body, params_at, version) & cql::query_flag::kDefaultTimestamp)))
    return std::nullopt;
  e.params = cql::QueryParameters::decode(r, version);
  if (!plan.generated.empty()) {
    detail::complete_values(
        e.params.values,
        (e.params.flags & cql::query_flag::kNamesForValues) ? &e.params.names : nullptr, plan,
        now_us);
    e.params.flags |= cql::query_flag::kValues;
  }
  set_timestamp(e.params, plan.timestamp_allowed, now_us);
  Bytes out(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
  cql::Writer w(out);
  e.encode(w, version);
  return out;
}

cql::ResultMsg hide_generated(cql::ResultMsg msg, const WritePlan& plan) {
  auto* p = std::get_if<cql::PreparedResult>(&msg.body);
  if (!p || plan.generated.empty()) return msg;
  std::vector<bool> hidden(p->metadata.columns.size(), false);
  for (const auto& g : plan.generated)
    if (g.index >= 0 && static_cast<std::size_t>(g.index) < hidden.size())
      hidden[static_cast<std::size_t>(g.index)] = true;
  std::vector<cql::ColumnSpec> cols;
  std::vector<int> new_index(hidden.size(), -1);
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    if (hidden[i]) continue;
    new_index[i] = static_cast<int>(cols.size());
    cols.push_back(p->metadata.columns[i]);
  }
  // A partition key bound to a generated value: the client cannot compute the routing key, so
  // it gets no partition-key indices at all (token-aware routing falls back to any node).
  std::vector<uint16_t> pk;
  bool pk_hidden = false;
  for (uint16_t i : p->metadata.pk_indices) {
    if (i >= new_index.size() || new_index[i] < 0) {
      pk_hidden = true;
      continue;
    }
    pk.push_back(static_cast<uint16_t>(new_index[i]));
  }
  p->metadata.columns = std::move(cols);
  p->metadata.pk_indices = pk_hidden ? std::vector<uint16_t>{} : pk;
  return msg;
}

}  // namespace zdm::proxy
