// The faults a zdm-testcluster node can be told to inject (see admin.h for the HTTP side), and
// the decision for one request: answer (maybe late), answer with an error, a corrupt frame,
// nothing at all, or drop the connection. Pure: JSON in and out, a random source passed in.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/cql/classifier.h"
#include "common/cql/frame.h"
#include "common/cql/messages.h"

namespace zdm::testcluster {

/// Which requests a fault applies to.
struct FaultMatch {
  double fraction = 1.0;  // of the matching requests, 0..1
  enum class Statements : uint8_t { kAll, kReads, kWrites } statements = Statements::kAll;
  std::vector<cql::Opcode> opcodes;  // empty: QUERY, PREPARE, EXECUTE, BATCH
};

struct LatencyFault {
  FaultMatch match;
  int min_ms = 0, max_ms = 0;
};

/// An ERROR answered instead of the result, with the code-specific body of spec §9.
struct ErrorFault {
  FaultMatch match;
  cql::ErrorCode code = cql::ErrorCode::kServerError;
  std::string message;  // empty: Cassandra's message for the code
  std::optional<int32_t> received, block_for, alive;
  std::optional<std::string> write_type;
  bool data_present = false;
};

struct GarbageFault {
  FaultMatch match;
  bool header = false;  // a corrupt header instead of a corrupt ROWS body
};

struct NodeFaults {
  std::optional<LatencyFault> latency;
  std::optional<ErrorFault> error;
  std::optional<FaultMatch> drop;     // close the connection instead of answering
  std::optional<FaultMatch> silence;  // never answer
  std::optional<GarbageFault> garbage;

  bool empty() const { return !latency && !error && !drop && !silence && !garbage; }
};

/// Merges a JSON object of faults into `f` (a key set to null removes that fault). Throws
/// std::invalid_argument naming the offending key or value; `f` is unchanged then.
void merge_faults(NodeFaults& f, const nlohmann::json& j);
nlohmann::json to_json(const NodeFaults& f);

/// What a fault decision needs to know about a request.
struct RequestInfo {
  cql::Opcode opcode = cql::Opcode::kQuery;
  cql::StatementKind kind = cql::StatementKind::kOther;
  bool system = false;  // reads a system keyspace (not counted as a read)
  cql::Consistency consistency = cql::Consistency::kOne;
  cql::BatchType batch_type = cql::BatchType::kLogged;
  uint8_t version = 4;
};

struct Decision {
  enum class Action : uint8_t { kAnswer, kError, kGarbage, kSilence, kDrop };
  Action action = Action::kAnswer;
  int delay_ms = 0;
};

/// Decides what happens to one request. `rng` draws the fractions and the latency.
Decision decide(const NodeFaults& f, const RequestInfo& r, std::mt19937_64& rng);

/// The ERROR of an error fault for request `r` (message and body as Cassandra sends them).
cql::ErrorMsg fault_error(const ErrorFault& e, const RequestInfo& r);

/// A corrupt response frame on `stream`: a 31-byte ROWS body whose column count no body could
/// hold, or (header) a 9-byte header with an unknown version and an absurd length.
cql::Bytes garbage_frame(const GarbageFault& g, uint8_t version, int16_t stream);

}  // namespace zdm::testcluster
