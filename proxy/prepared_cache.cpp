#include "proxy/prepared_cache.h"

#include <mutex>

namespace zdm::proxy {

void PreparedCache::put(PreparedEntry entry) {
  std::unique_lock lock(mu_);
  std::string ok = key(entry.origin_id);
  by_target_[key(entry.target_id)] = ok;
  entries_[ok] = std::move(entry);
}

std::optional<PreparedEntry> PreparedCache::by_origin_id(cql::BytesView id) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(key(id));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::optional<cql::Bytes> PreparedCache::origin_id_for_target(cql::BytesView target_id) const {
  std::shared_lock lock(mu_);
  auto it = by_target_.find(key(target_id));
  if (it == by_target_.end()) return std::nullopt;
  const auto* p = reinterpret_cast<const std::byte*>(it->second.data());
  return cql::Bytes(p, p + it->second.size());
}

std::size_t PreparedCache::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

}  // namespace zdm::proxy
