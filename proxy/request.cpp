#include "proxy/request.h"

#include "proxy/wire.h"

namespace zdm::proxy {

void PendingRequest::sent(ProxyMetrics& m, bool to_origin, bool to_target) {
  expected[0] = to_origin;
  expected[1] = to_target;
  if (decision.metric != RequestType::kNone) m.inflight(decision.metric).add();
}

bool PendingRequest::answer(Cluster c, cql::Bytes frame, NodeMetrics* node,
                            cql::Compression compression) {
  if (node && decision.metric != RequestType::kNone) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    (decision.metric == RequestType::kWrites ? node->writes : node->reads)->observe(secs);
    if (frame_opcode(frame) == cql::Opcode::kError)
      node->requests_failed[error_label(error_code_of(frame, compression))]->inc();
  }
  responses[static_cast<int>(c)] = std::move(frame);
  received[static_cast<int>(c)] = true;
  return !awaits(Cluster::kOrigin) && !awaits(Cluster::kTarget);
}

Outcome PendingRequest::answered(ProxyMetrics& m, Cluster primary) const {
  Outcome o;
  for (int c = 0; c < 2; ++c)
    o.error[c] = expected[c] && frame_opcode(responses[c]) == cql::Opcode::kError;
  o.chosen = end(m, o.error, primary, true);
  return o;
}

void PendingRequest::lost(ProxyMetrics& m, Cluster lost, Cluster primary) const {
  const int l = static_cast<int>(lost), o = 1 - l;
  bool failed[2];
  failed[l] = true;
  failed[o] = expected[o] && received[o] && frame_opcode(responses[o]) == cql::Opcode::kError;
  end(m, failed, primary, false);
}

void PendingRequest::timed_out(ProxyMetrics& m, Cluster primary) const {
  const bool failed[2] = {awaits(Cluster::kOrigin), awaits(Cluster::kTarget)};
  end(m, failed, primary, false);
}

void PendingRequest::abandoned(ProxyMetrics& m) const {
  const bool failed[2] = {false, false};
  end(m, failed, Cluster::kOrigin, false);
}

Cluster PendingRequest::end(ProxyMetrics& m, const bool failed[2], Cluster primary,
                            bool answered) const {
  const Aggregate a = aggregate(expected, failed, opcode, decision.metric, primary);
  switch (a.failed_write) {
    case Aggregate::FailedWrite::kBoth:
      m.failed_writes_both().inc();
      break;
    case Aggregate::FailedWrite::kOrigin:
      m.failed_writes_origin().inc();
      break;
    case Aggregate::FailedWrite::kTarget:
      m.failed_writes_target().inc();
      break;
    case Aggregate::FailedWrite::kNone:
      break;
  }
  if (a.failed_read) m.failed_reads(a.chosen).inc();
  if (decision.metric != RequestType::kNone) {
    if (answered)
      m.request_duration(decision.metric)
          .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    m.inflight(decision.metric).sub();
  }
  return a.chosen;
}

}  // namespace zdm::proxy
