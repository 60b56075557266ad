// The prepared-statement cache shared by all client connections (reference/zdm-proxy.md §2
// "Prepared ids"): clients only ever see origin prepared ids; EXECUTE and BATCH sent to target
// carry the target's id.
#pragma once

#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "proxy/cql/frame.h"
#include "proxy/rewrite.h"
#include "proxy/router.h"

namespace zdm::proxy {

struct PreparedEntry {
  cql::Bytes origin_id;
  cql::Bytes target_id;
  Decision decision;  // routing of EXECUTEs of this statement
  std::string query;  // as the clusters prepared it (generated calls already markers)
  std::string keyspace;
  WritePlan plan;  // how EXECUTEs of a write are completed
};

class PreparedCache {
 public:
  void put(PreparedEntry entry);
  std::optional<PreparedEntry> by_origin_id(cql::BytesView id) const;
  /// The origin id for a target id (to rewrite UNPREPARED from target).
  std::optional<cql::Bytes> origin_id_for_target(cql::BytesView target_id) const;
  std::size_t size() const;

 private:
  static std::string key(cql::BytesView id) {
    return std::string(reinterpret_cast<const char*>(id.data()), id.size());
  }
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, PreparedEntry> entries_;
  std::unordered_map<std::string, std::string> by_target_;
};

}  // namespace zdm::proxy
