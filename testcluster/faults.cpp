#include "testcluster/faults.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

namespace zdm::testcluster {

using nlohmann::json;

namespace {

// The error types the admin accepts, by the names of Cassandra's exceptions.
const std::map<std::string, cql::ErrorCode>& error_codes() {
  static const std::map<std::string, cql::ErrorCode> codes = {
      {"write_timeout", cql::ErrorCode::kWriteTimeout},
      {"read_timeout", cql::ErrorCode::kReadTimeout},
      {"unavailable", cql::ErrorCode::kUnavailable},
      {"overloaded", cql::ErrorCode::kOverloaded},
      {"server_error", cql::ErrorCode::kServerError},
      {"is_bootstrapping", cql::ErrorCode::kIsBootstrapping},
  };
  return codes;
}

std::string code_name(cql::ErrorCode c) {
  for (const auto& [name, code] : error_codes())
    if (code == c) return name;
  return "server_error";
}

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw std::invalid_argument(key + ": " + why);
}

void check_keys(const json& j, const std::string& where, const std::set<std::string>& allowed) {
  if (!j.is_object()) bad(where, "expected an object");
  for (const auto& [k, v] : j.items())
    if (!allowed.contains(k)) bad(where + "." + k, "unknown key");
}

int32_t get_int(const json& j, const std::string& key, const std::string& where, int32_t lo,
                int32_t hi) {
  const json& v = j.at(key);
  if (!v.is_number_integer()) bad(where + "." + key, "expected an integer");
  auto n = v.get<int64_t>();
  if (n < lo || n > hi)
    bad(where + "." + key, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int32_t>(n);
}

const std::set<std::string> kMatchKeys = {"fraction", "statements", "opcodes"};

std::set<std::string> with_match(std::set<std::string> keys) {
  keys.insert(kMatchKeys.begin(), kMatchKeys.end());
  return keys;
}

FaultMatch parse_match(const json& j, const std::string& where) {
  FaultMatch m;
  if (j.contains("fraction")) {
    if (!j["fraction"].is_number()) bad(where + ".fraction", "expected a number 0..1");
    m.fraction = j["fraction"].get<double>();
    if (m.fraction < 0 || m.fraction > 1) bad(where + ".fraction", "must be 0..1");
  }
  if (j.contains("statements")) {
    std::string s = j["statements"].is_string() ? j["statements"].get<std::string>() : "";
    if (s == "all") {
      m.statements = FaultMatch::Statements::kAll;
    } else if (s == "reads") {
      m.statements = FaultMatch::Statements::kReads;
    } else if (s == "writes") {
      m.statements = FaultMatch::Statements::kWrites;
    } else {
      bad(where + ".statements", "expected \"all\", \"reads\" or \"writes\"");
    }
  }
  if (j.contains("opcodes")) {
    if (!j["opcodes"].is_array()) bad(where + ".opcodes", "expected an array of opcode names");
    for (const auto& o : j["opcodes"]) {
      std::string name = o.is_string() ? o.get<std::string>() : "";
      std::transform(name.begin(), name.end(), name.begin(), ::toupper);
      if (name == "QUERY") {
        m.opcodes.push_back(cql::Opcode::kQuery);
      } else if (name == "PREPARE") {
        m.opcodes.push_back(cql::Opcode::kPrepare);
      } else if (name == "EXECUTE") {
        m.opcodes.push_back(cql::Opcode::kExecute);
      } else if (name == "BATCH") {
        m.opcodes.push_back(cql::Opcode::kBatch);
      } else {
        bad(where + ".opcodes", "expected QUERY, PREPARE, EXECUTE or BATCH");
      }
    }
  }
  return m;
}

json match_json(const FaultMatch& m) {
  json j;
  j["fraction"] = m.fraction;
  j["statements"] = m.statements == FaultMatch::Statements::kAll     ? "all"
                    : m.statements == FaultMatch::Statements::kReads ? "reads"
                                                                     : "writes";
  if (!m.opcodes.empty()) {
    j["opcodes"] = json::array();
    for (auto op : m.opcodes) j["opcodes"].push_back(cql::opcode_name(op));
  }
  return j;
}

bool applies(const FaultMatch& m, const RequestInfo& r, std::mt19937_64& rng) {
  if (!m.opcodes.empty() &&
      std::find(m.opcodes.begin(), m.opcodes.end(), r.opcode) == m.opcodes.end())
    return false;
  bool write = r.kind == cql::StatementKind::kInsert || r.kind == cql::StatementKind::kUpdate ||
               r.kind == cql::StatementKind::kDelete || r.kind == cql::StatementKind::kBatch;
  bool read = r.kind == cql::StatementKind::kSelect && !r.system;
  if (r.opcode == cql::Opcode::kPrepare && m.statements != FaultMatch::Statements::kAll &&
      m.opcodes.empty())
    return false;  // reads/writes: the EXECUTEs fail, preparing them works
  if (m.statements == FaultMatch::Statements::kReads && !read) return false;
  if (m.statements == FaultMatch::Statements::kWrites && !write) return false;
  if (m.fraction >= 1.0) return true;
  if (m.fraction <= 0.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < m.fraction;
}

// Replicas a consistency level waits for, with replication factor 3 (the usual case).
int32_t block_for(cql::Consistency cl) {
  using C = cql::Consistency;
  switch (cl) {
    case C::kAny:
    case C::kOne:
    case C::kLocalOne:
      return 1;
    case C::kTwo:
      return 2;
    case C::kThree:
    case C::kAll:
      return 3;
    default:
      return 2;
  }
}

}  // namespace

void merge_faults(NodeFaults& out, const json& j) {
  check_keys(j, "faults", {"latency", "error", "drop", "silence", "garbage"});
  NodeFaults f = out;
  if (j.contains("latency")) {
    const json& v = j["latency"];
    if (v.is_null()) {
      f.latency.reset();
    } else if (v.is_number_integer()) {
      LatencyFault l;
      l.min_ms = l.max_ms = get_int(j, "latency", "faults", 0, 600000);
      f.latency = l;
    } else {
      check_keys(v, "latency", with_match({"ms", "min_ms", "max_ms"}));
      LatencyFault l;
      l.match = parse_match(v, "latency");
      if (v.contains("ms")) {
        l.min_ms = l.max_ms = get_int(v, "ms", "latency", 0, 600000);
      } else if (v.contains("min_ms") && v.contains("max_ms")) {
        l.min_ms = get_int(v, "min_ms", "latency", 0, 600000);
        l.max_ms = get_int(v, "max_ms", "latency", 0, 600000);
        if (l.max_ms < l.min_ms) bad("latency.max_ms", "must be >= min_ms");
      } else {
        bad("latency", "needs ms, or min_ms and max_ms");
      }
      f.latency = l;
    }
  }
  if (j.contains("error")) {
    const json& v = j["error"];
    if (v.is_null()) {
      f.error.reset();
    } else {
      check_keys(v, "error",
                 with_match({"type", "message", "received", "block_for", "alive", "write_type",
                             "data_present"}));
      ErrorFault e;
      e.match = parse_match(v, "error");
      std::string type =
          v.contains("type") && v["type"].is_string() ? v["type"].get<std::string>() : "";
      auto it = error_codes().find(type);
      if (it == error_codes().end())
        bad("error.type",
            "expected write_timeout, read_timeout, unavailable, overloaded, server_error or "
            "is_bootstrapping");
      e.code = it->second;
      if (v.contains("message")) {
        if (!v["message"].is_string()) bad("error.message", "expected a string");
        e.message = v["message"].get<std::string>();
      }
      if (v.contains("received")) e.received = get_int(v, "received", "error", 0, 1000);
      if (v.contains("block_for")) e.block_for = get_int(v, "block_for", "error", 0, 1000);
      if (v.contains("alive")) e.alive = get_int(v, "alive", "error", 0, 1000);
      if (v.contains("write_type")) {
        static const std::set<std::string> kTypes = {
            "SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC"};
        std::string wt = v["write_type"].is_string() ? v["write_type"].get<std::string>() : "";
        if (!kTypes.contains(wt)) bad("error.write_type", "unknown write type '" + wt + "'");
        e.write_type = wt;
      }
      if (v.contains("data_present")) {
        if (!v["data_present"].is_boolean()) bad("error.data_present", "expected true or false");
        e.data_present = v["data_present"].get<bool>();
      }
      f.error = e;
    }
  }
  for (const char* key : {"drop", "silence"}) {
    if (!j.contains(key)) continue;
    const json& v = j[key];
    auto& slot = std::string(key) == "drop" ? f.drop : f.silence;
    if (v.is_null()) {
      slot.reset();
    } else {
      check_keys(v, key, kMatchKeys);
      slot = parse_match(v, key);
    }
  }
  if (j.contains("garbage")) {
    const json& v = j["garbage"];
    if (v.is_null()) {
      f.garbage.reset();
    } else {
      check_keys(v, "garbage", with_match({"mode"}));
      GarbageFault g;
      g.match = parse_match(v, "garbage");
      if (v.contains("mode")) {
        std::string mode = v["mode"].is_string() ? v["mode"].get<std::string>() : "";
        if (mode != "body" && mode != "header") bad("garbage.mode", "expected body or header");
        g.header = mode == "header";
      }
      f.garbage = g;
    }
  }
  out = std::move(f);
}

json to_json(const NodeFaults& f) {
  json j = json::object();
  if (f.latency) {
    json l = match_json(f.latency->match);
    l["min_ms"] = f.latency->min_ms;
    l["max_ms"] = f.latency->max_ms;
    j["latency"] = l;
  }
  if (f.error) {
    json e = match_json(f.error->match);
    e["type"] = code_name(f.error->code);
    if (!f.error->message.empty()) e["message"] = f.error->message;
    if (f.error->received) e["received"] = *f.error->received;
    if (f.error->block_for) e["block_for"] = *f.error->block_for;
    if (f.error->alive) e["alive"] = *f.error->alive;
    if (f.error->write_type) e["write_type"] = *f.error->write_type;
    if (f.error->code == cql::ErrorCode::kReadTimeout) e["data_present"] = f.error->data_present;
    j["error"] = e;
  }
  if (f.drop) j["drop"] = match_json(*f.drop);
  if (f.silence) j["silence"] = match_json(*f.silence);
  if (f.garbage) {
    json g = match_json(f.garbage->match);
    g["mode"] = f.garbage->header ? "header" : "body";
    j["garbage"] = g;
  }
  return j;
}

Decision decide(const NodeFaults& f, const RequestInfo& r, std::mt19937_64& rng) {
  Decision d;
  if (f.empty()) return d;
  if (f.latency && applies(f.latency->match, r, rng))
    d.delay_ms =
        f.latency->min_ms == f.latency->max_ms
            ? f.latency->min_ms
            : std::uniform_int_distribution<int>(f.latency->min_ms, f.latency->max_ms)(rng);
  if (f.drop && applies(*f.drop, r, rng)) {
    d.action = Decision::Action::kDrop;
  } else if (f.silence && applies(*f.silence, r, rng)) {
    d.action = Decision::Action::kSilence;
  } else if (f.garbage && applies(f.garbage->match, r, rng)) {
    d.action = Decision::Action::kGarbage;
  } else if (f.error && applies(f.error->match, r, rng)) {
    d.action = Decision::Action::kError;
  }
  return d;
}

cql::ErrorMsg fault_error(const ErrorFault& e, const RequestInfo& r) {
  cql::ErrorMsg m;
  m.code = e.code;
  int32_t need = e.block_for.value_or(block_for(r.consistency));
  int32_t received = e.received.value_or(0);
  cql::Writer w(m.extra);
  switch (e.code) {
    case cql::ErrorCode::kUnavailable:
      m.message = "Cannot achieve consistency level " + cql::consistency_name(r.consistency);
      w.write_consistency(r.consistency);
      w.write_int(need);
      w.write_int(e.alive.value_or(0));
      break;
    case cql::ErrorCode::kWriteTimeout: {
      m.message = "Operation timed out - received only " + std::to_string(received) + " responses.";
      std::string type = e.write_type.value_or(
          r.opcode != cql::Opcode::kBatch && r.kind != cql::StatementKind::kBatch ? "SIMPLE"
          : r.batch_type == cql::BatchType::kUnlogged                             ? "UNLOGGED_BATCH"
          : r.batch_type == cql::BatchType::kCounter                              ? "COUNTER"
                                                                                  : "BATCH");
      w.write_consistency(r.consistency);
      w.write_int(received);
      w.write_int(need);
      w.write_string(type);
      if (type == "CAS" && r.version >= 5) w.write_short(0);  // <contentions>, v5 only
      break;
    }
    case cql::ErrorCode::kReadTimeout:
      m.message = "Operation timed out - received only " + std::to_string(received) + " responses.";
      w.write_consistency(r.consistency);
      w.write_int(received);
      w.write_int(need);
      w.write_byte(e.data_present ? 1 : 0);
      break;
    case cql::ErrorCode::kOverloaded:
      m.message = "Server is in overloaded state. Cannot accept more requests at this point";
      break;
    case cql::ErrorCode::kIsBootstrapping:
      m.message = "Cannot read from a bootstrapping node";
      break;
    default:
      m.message = "java.lang.RuntimeException: injected by the zdm-testcluster fault admin";
      break;
  }
  if (!e.message.empty()) m.message = e.message;
  return m;
}

cql::Bytes garbage_frame(const GarbageFault& g, uint8_t version, int16_t stream) {
  cql::Bytes out;
  if (g.header) {
    // An unknown version byte and a body length past any limit: a reader must give up.
    for (int b : {0x7f, 0xff, 0x13, 0x37, 0x0f, 0x7f, 0xff, 0xff, 0xf0})
      out.push_back(static_cast<std::byte>(b));
    return out;
  }
  cql::Bytes body;
  cql::Writer w(body);
  w.write_int(0x0002);      // RESULT kind: Rows
  w.write_int(0x0001);      // flags: global table spec
  w.write_int(0x7fffffff);  // columns_count: far more than the body holds
  w.write_string("ks");
  w.write_string("t");
  w.write_string("c");
  w.write_short(0x0009);  // int
  while (body.size() < 31) body.push_back(std::byte{0xff});
  cql::Header h{version, true, 0, stream, cql::Opcode::kResult, 0};
  return cql::encode_frame(h, body);
}

}  // namespace zdm::testcluster
