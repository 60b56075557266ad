#include "proxy/request_router.h"

#include <algorithm>
#include <cctype>

#include "common/cql/classifier.h"
#include "common/cql/messages.h"
#include "common/net/node_connection.h"
#include "proxy/handshake.h"
#include "proxy/journal_record.h"
#include "proxy/prepared_ids.h"
#include "proxy/read_compare.h"
#include "proxy/rewrite.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;
using cql::Opcode;

Bytes RequestRouter::answer_local(const cql::Header& h, LocalTable table,
                                  const cql::StatementInfo& info, std::string_view query,
                                  const cql::QueryParameters* params) {
  auto snapshot = shared_.cc(config_.system_queries_mode).snapshot();
  return local_select(h, table, info, query, params, snapshot.get(), config_.system_queries_mode,
                      *shared_.topology());
}

void RequestRouter::Request::set_body(const Bytes& b) {
  frame = with_body(frame, b);
  body = BytesView(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
}

namespace {
std::string_view as_chars(cql::BytesView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// "ks.table" of a statement, for journal records and metrics; a BEGIN BATCH … APPLY BATCH:
/// of its first statement.
std::string table_label(const cql::StatementInfo& info, std::string_view query,
                        const std::string& keyspace) {
  if (info.kind == cql::StatementKind::kBatch) {
    std::string upper(query.substr(0, 4096));
    for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::size_t first = std::string::npos;
    for (const char* word : {"INSERT", "UPDATE", "DELETE"})
      first = std::min(first, upper.find(word, 5));
    if (first != std::string::npos) {
      const auto inner = cql::classify(query.substr(first));
      if (inner.is_write() && inner.kind != cql::StatementKind::kBatch)
        return table_label(inner, query.substr(first), keyspace);
    }
  }
  return (info.keyspace.empty() ? keyspace : info.keyspace) + "." + info.table;
}
}  // namespace

Routed RequestRouter::route(const cql::Header& h, Bytes frame, cql::Compression compression,
                            Bytes& scratch, const std::string& keyspace, Outgoing& o) {
  Routed out;
  Request req{h,  o.frame, {}, 0,  {}, o.pending, o.target_frame, false, false, false,
              {}, {},      {}, {}, {}, {}};
  req.frame = std::move(frame);
  const auto max_body = static_cast<uint32_t>(config_.proxy_max_frame_size_bytes);
  // (Target's copy with another consistency is built from the whole body.)
  std::optional<BytesView> prefix;
  if (!config_.target_consistency_level)
    prefix = query_prefix(h, req.frame, compression, scratch, max_body);
  if (prefix) {
    req.body = *prefix;  // a large compressed QUERY that is not a write: never inflated whole
  } else {
    // Refused before inflating when it would inflate past the largest frame the proxy accepts.
    req.body = net::frame_body(req.frame, compression, scratch, max_body);
  }
  cql::Reader r(req.body);
  cql::skip_request_prefix(r, h.flags);
  req.prefix_end = r.position();
  req.journaling = shared_.target.has_journal() && shared_.target.journaling();
  bool forward = true;
  switch (h.opcode) {
    case Opcode::kQuery:
      forward = route_query(req, keyspace, out.answer);
      break;
    case Opcode::kPrepare:
      forward = route_prepare(req, keyspace, out.answer);
      break;
    case Opcode::kExecute:
      forward = route_execute(req, out.answer);
      break;
    case Opcode::kBatch:
      forward = route_batch(req, keyspace, out.answer);
      break;
    case Opcode::kRegister:
      for (auto& e : cql::RegisterMsg::decode(r).events)
        if (e == "TOPOLOGY_CHANGE" || e == "STATUS_CHANGE") out.events.push_back(std::move(e));
      out.registered = true;
      req.d = route_opcode(h.opcode, config_);
      break;
    case Opcode::kStartup:
    case Opcode::kAuthResponse:
      out.answer = cql::encode_error(h.version, h.stream, cql::ErrorCode::kProtocolError,
                                     unexpected_when_ready(h.opcode));
      return out;
    default:
      req.d = route_opcode(h.opcode, config_);
      break;
  }
  if (!forward) return out;
  if (config_.target_consistency_level) override_target_consistency(req);
  PendingRequest& p = req.p;
  if (h.opcode != Opcode::kQuery)
    p.primary_suffices = h.opcode == Opcode::kPrepare || h.opcode == Opcode::kRegister ||
                         h.opcode == Opcode::kOptions;
  p.client_stream = h.stream;
  p.opcode = h.opcode;
  p.version = h.version;
  if (req.journaling) protect_target(req);
  p.decision = req.d;
  p.start = std::chrono::steady_clock::now();
  out.forward = true;
  return out;
}

void RequestRouter::protect_target(Request& req) {
  Decision& d = req.d;
  TargetGuard& guard = shared_.target;
  const auto held = guard.held_back();
  if (held && config_.secondary() == Cluster::kTarget) d.async_mirror = false;
  if (d.destination != Destination::kBoth) return;
  auto to_origin_only = [&] {
    d.destination = Destination::kOrigin;
    req.target_frame.reset();
  };
  if (!req.write) {
    if (!held) return;
    // PREPARE, USE, REGISTER: origin alone (a statement prepared there stands for both; target
    // answers UNPREPARED later and the driver prepares it again). A schema change while target
    // is disabled reaches origin only.
    if (req.p.primary_suffices) {
      to_origin_only();
    } else if (*held == journal::Reason::kTargetDisabled) {
      guard.unjournaled(req.table, "other");
      to_origin_only();
    }
    return;
  }
  if (!req.replayable) {
    // Never journaled: with target disabled origin alone gets it (counted); otherwise as in
    // fail mode, target's failure fails the request.
    if (held == journal::Reason::kTargetDisabled) {
      guard.unjournaled(req.table, "lwt_or_counter");
      to_origin_only();
    } else {
      req.p.unreplayable = true;  // isolate: target's failure is counted (protect_outcome)
      req.p.journal_table = std::move(req.table);
    }
    return;
  }
  journal::WriteParts w;
  w.reason = held ? *held : journal::Reason::kInFlight;
  w.version = req.h.version;
  w.opcode = static_cast<uint8_t>(req.h.opcode == Opcode::kBatch ? Opcode::kBatch : Opcode::kQuery);
  w.keyspace = req.keyspace;
  w.table = req.table;
  w.body = req.replay_parts;
  const auto seq = guard.append(w, ioc_);
  if (!seq) return;  // the journal is full: fail mode
  req.p.journal_seq = *seq;
  req.p.journal_table = std::move(req.table);
  if (held) {
    guard.missed(req.p.journal_table, *held);
    to_origin_only();
  }
}

std::optional<BytesView> RequestRouter::query_prefix(const cql::Header& h, const Bytes& frame,
                                                     cql::Compression compression, Bytes& scratch,
                                                     uint32_t max_uncompressed) {
  if (h.opcode != Opcode::kQuery || compression != cql::Compression::kLz4 ||
      !(h.flags & cql::flag::kCompression))
    return std::nullopt;
  const BytesView body(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
  const auto declared = cql::uncompressed_length(compression, body);
  // Too large, or more than LZ4 can expand to: frame_body() refuses it, as for any request.
  if (!declared || *declared <= kQueryPrefixBytes || *declared > max_uncompressed ||
      *declared > 255 * body.size())
    return std::nullopt;
  try {
    const BytesView prefix = cql::lz4_body_prefix(body, kQueryPrefixBytes, scratch);
    cql::Reader r(prefix);
    cql::skip_request_prefix(r, h.flags);
    // A read, DDL or USE needs its query string alone (route_query); a write may be completed
    // (rewrite.h), which takes the whole body.
    if (cql::classify(r.read_long_string()).is_write()) return std::nullopt;
    return prefix;
  } catch (const cql::ProtocolError&) {
    return std::nullopt;  // the query string goes past the prefix, or a corrupt body: inflated
  }
}

void RequestRouter::override_target_consistency(Request& req) {
  const Opcode op = req.h.opcode;
  if (op != Opcode::kQuery && op != Opcode::kExecute && op != Opcode::kBatch) return;
  const Decision& d = req.d;
  const bool to_target = d.destination == Destination::kTarget ||
                         d.destination == Destination::kBoth ||
                         (d.async_mirror && config_.secondary() == Cluster::kTarget);
  if (!to_target) return;
  // Target's copy, uncompressed (the protocol lets each frame say whether it is compressed).
  if (!req.target_frame) req.target_frame = with_body(req.frame, req.body);
  set_consistency(*req.target_frame, *config_.target_consistency_level);
}

bool RequestRouter::route_query(Request& req, const std::string& keyspace, Bytes& answer) {
  const cql::Header& h = req.h;
  cql::Reader r(req.body);
  r.read_raw(req.prefix_end);
  std::string query = r.read_long_string();
  auto info = cql::classify(query);
  req.d = route_statement(info, keyspace, config_);
  req.p.primary_suffices = info.kind == cql::StatementKind::kUse;
  if (req.journaling) {
    req.write = info.is_write();
    req.table = table_label(info, query, keyspace);
  }
  if (config_.read_compare && req.d.async_mirror)
    req.p.compare_table = table_label(info, query, keyspace);
  if (req.d.destination == Destination::kLocal) {
    answer = answer_local(h, req.d.local, info, query, nullptr);
    return false;
  }
  if (info.keyspace == "system_traces") traces_.route(query, req.d);
  // One value of now()/uuid() and one write timestamp for both clusters; the common case (a
  // timestamp from the driver, no call) costs two byte scans.
  if (info.is_write() &&
      (may_have_calls(query) || !has_default_timestamp(req.body, r.position(), h.version))) {
    auto scan = cql::scan_statement(query);
    if (auto nb = rewrite_query(req.body, req.prefix_end, h.version, scan, write_timestamp_us()))
      req.set_body(*nb);
  }
  if (req.journaling && req.write) {
    const auto scan = cql::scan_statement(query);
    req.replayable = !scan.conditional && !scan.counter_update;
    if (req.replayable) {
      req.keyspace = keyspace;
      req.replay_parts[0] = as_chars(req.body.subspan(req.prefix_end));
    }
  }
  return true;
}

bool RequestRouter::route_prepare(Request& req, const std::string& keyspace, Bytes& answer) {
  const cql::Header& h = req.h;
  cql::Reader r(req.body);
  r.read_raw(req.prefix_end);
  auto prep = cql::PrepareMsg::decode(r, h.version);
  auto info = cql::classify(prep.query);
  if (info.is_write()) {
    auto scan = cql::scan_statement(prep.query);
    req.p.plan = plan_write(scan, config_.replace_cql_functions);
    if (!req.p.plan.generated.empty()) {
      // Both clusters prepare the calls as bind markers; the proxy fills them in.
      prep.query = cql::calls_to_markers(prep.query, scan);
      Bytes nb(req.body.begin(), req.body.begin() + static_cast<std::ptrdiff_t>(req.prefix_end));
      cql::Writer w(nb);
      prep.encode(w, h.version);
      req.set_body(nb);
    }
  }
  req.p.plan.table = (info.keyspace.empty() ? keyspace : info.keyspace) + "." + info.table;
  req.p.query = prep.query;
  req.p.execute_decision = route_statement(info, keyspace, config_);
  if (req.p.execute_decision.destination == Destination::kLocal) {
    // Prepared by the proxy itself; its EXECUTEs are answered here too.
    auto snapshot = shared_.cc(config_.system_queries_mode).snapshot();
    answer = local_prepare(h, req.p.execute_decision.local, info, prep.query, keyspace,
                           snapshot.get(), *shared_.topology(), shared_.prepared);
    return false;
  }
  req.d = Decision{Destination::kBoth, false, RequestType::kNone, LocalTable::kNone};
  return true;
}

bool RequestRouter::route_execute(Request& req, Bytes& answer) {
  const cql::Header& h = req.h;
  cql::Reader r(req.body);
  r.read_raw(req.prefix_end);
  const cql::BytesView id = r.read_short_bytes_view();
  if (auto local = shared_.prepared.local(id)) {
    cql::Reader er(req.body);
    er.read_raw(req.prefix_end);
    auto exec = cql::ExecuteMsg::decode(er, h.version);
    answer = answer_local(h, local->table, local->info, local->query, &exec.params);
    return false;
  }
  auto entry = shared_.prepared.by_origin_id(id);
  if (!entry) {
    shared_.metrics.pscache_miss().inc();
    answer = cql::encode_message(h.version, true, h.stream, Opcode::kError, unknown_execute_id(id));
    return false;
  }
  req.d = entry->decision;
  req.p.origin_prepared_id.assign(id.begin(), id.end());
  if (auto nb =
          rewrite_execute(req.body, req.prefix_end, h.version, entry->plan, write_timestamp_us()))
    req.set_body(*nb);
  if (config_.read_compare && req.d.async_mirror) {
    req.p.compare_table = entry->plan.table;
    req.p.compare_key = key_of_execute(req.body, req.prefix_end, h.version, entry->pk_indices);
  }
  if (req.journaling) {
    req.write = entry->decision.metric == RequestType::kWrites;
    req.table = entry->plan.table;
    req.replayable = req.write && entry->plan.timestamp_allowed;
    if (req.replayable) {
      // QUERY body: the statement as a [long string], then the EXECUTE's parameters as they are.
      const auto n = static_cast<uint32_t>(entry->query.size());
      req.replay_len = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                        static_cast<char>(n >> 8), static_cast<char>(n)};
      req.replay_parts = {std::string_view(req.replay_len.data(), 4), entry->query,
                          as_chars(execute_parameters(req.body, req.prefix_end, h.version))};
      req.keyspace = entry->keyspace;
      req.entry = entry;
    }
  }
  const Decision& d = req.d;
  const bool target_needed = d.destination == Destination::kTarget ||
                             d.destination == Destination::kBoth ||
                             (d.async_mirror && config_.secondary() == Cluster::kTarget);
  if (!target_needed) return true;
  // Target's copy carries target's prepared id (and, v5, target's result metadata id).
  req.target_frame =
      with_body(req.frame, execute_for_target(req.body, req.prefix_end, h.version, entry->target_id,
                                              entry->target_result_metadata_id));
  return true;
}

bool RequestRouter::route_batch(Request& req, const std::string& keyspace, Bytes& answer) {
  const cql::Header& h = req.h;
  std::vector<std::shared_ptr<const PreparedEntry>> entries;
  auto plan_of = [&](const Bytes& id) -> const WritePlan* {
    auto e = shared_.prepared.by_origin_id(id);
    if (!e) return nullptr;
    entries.push_back(e);
    return &e->plan;
  };
  if (auto nb = rewrite_batch(req.body, req.prefix_end, h.version, plan_of, write_timestamp_us()))
    req.set_body(*nb);
  req.d = route_opcode(Opcode::kBatch, config_);
  // Target's copy carries target's ids of the prepared children.
  BatchForTarget t = batch_for_target(req.body, req.prefix_end, h.version, [&](BytesView id) {
    auto e = shared_.prepared.by_origin_id(id);
    return e ? std::optional<Bytes>(e->target_id) : std::nullopt;
  });
  if (t.unknown_id) {
    shared_.metrics.pscache_miss().inc();
    answer = cql::encode_message(h.version, true, h.stream, Opcode::kError,
                                 unknown_batch_child(*t.unknown_id));
    return false;
  }
  req.p.origin_prepared_id = std::move(t.first_origin_id);
  if (t.body) req.target_frame = with_body(req.frame, *t.body);
  if (req.journaling) journal_batch(req, keyspace);
  return true;
}

void RequestRouter::journal_batch(Request& req, const std::string& keyspace) {
  req.write = true;
  cql::Reader r(req.body.subspan(req.prefix_end));
  const cql::BatchMsg batch = cql::BatchMsg::decode(r, req.h.version);
  req.replayable = batch.type != cql::BatchType::kCounter;
  for (const auto& child : batch.children) {
    if (child.prepared) {
      auto e = shared_.prepared.by_origin_id(child.id);
      if (!e) return;  // answered UNPREPARED already
      req.replayable = req.replayable && e->plan.timestamp_allowed;
      if (req.table.empty()) req.table = e->plan.table;
    } else {
      const auto scan = cql::scan_statement(child.query);
      req.replayable = req.replayable && !scan.conditional && !scan.counter_update;
      if (req.table.empty())
        req.table = table_label(cql::classify(child.query), child.query, keyspace);
    }
  }
  if (!req.replayable) return;
  auto body = replayable_batch(req.body, req.prefix_end, req.h.version,
                               [&](cql::BytesView id) -> std::optional<std::string> {
                                 auto e = shared_.prepared.by_origin_id(id);
                                 if (!e) return std::nullopt;
                                 return e->query;
                               });
  if (!body) {
    req.replayable = false;
    return;
  }
  req.keyspace = keyspace;
  req.replay_body = std::move(*body);
  req.replay_parts[0] = req.replay_body;
}

}  // namespace zdm::proxy
