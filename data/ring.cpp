#include "data/ring.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace zdm::data {

std::string to_string(const TokenRange& r) {
  return "(" + std::to_string(r.start) + ", " + std::to_string(r.end) + "]";
}

int64_t parse_token(const std::string& text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty())
    throw std::invalid_argument("token '" + text + "' is not a Murmur3 token");
  return v;
}

void Ring::add(std::size_t node, const std::vector<std::string>& tokens) {
  for (const auto& t : tokens) tokens_.emplace_back(parse_token(t), node);
  sorted_ = false;
}

const std::vector<std::pair<int64_t, std::size_t>>& Ring::tokens() const {
  if (!sorted_) {
    std::sort(tokens_.begin(), tokens_.end());
    sorted_ = true;
  }
  return tokens_;
}

std::size_t Ring::owner(int64_t token) const {
  const auto& t = tokens();
  auto it = std::lower_bound(t.begin(), t.end(), std::pair<int64_t, std::size_t>{token, 0});
  if (it == t.end()) it = t.begin();
  return it->second;
}

std::vector<TokenRange> split_ring(const Ring& ring, int splits) {
  if (splits < 1) splits = 1;
  std::vector<int64_t> cuts;
  // Equal pieces of the 2^64 tokens, in 128-bit arithmetic.
  const __int128 span = static_cast<__int128>(kMaxToken) - kMinToken;
  for (int i = 1; i < splits; ++i)
    cuts.push_back(static_cast<int64_t>(kMinToken + span * i / splits));
  for (const auto& [token, node] : ring.tokens())
    if (token != kMinToken && token != kMaxToken) cuts.push_back(token);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::vector<TokenRange> out;
  int64_t start = kMinToken;
  for (int64_t c : cuts) {
    out.push_back({start, c});
    start = c;
  }
  out.push_back({start, kMaxToken});
  return out;
}

void RangeSet::add(TokenRange r) {
  if (r.start >= r.end) return;
  std::vector<TokenRange> merged;
  bool placed = false;
  for (const auto& x : ranges_) {
    if (x.end < r.start) {
      merged.push_back(x);
    } else if (r.end < x.start) {
      if (!placed) merged.push_back(r), placed = true;
      merged.push_back(x);
    } else {  // overlapping or adjacent: (a, b] and (b, c] join
      r.start = std::min(r.start, x.start);
      r.end = std::max(r.end, x.end);
    }
  }
  if (!placed) merged.push_back(r);
  ranges_ = std::move(merged);
}

std::vector<TokenRange> RangeSet::missing(const TokenRange& r) const {
  std::vector<TokenRange> out;
  int64_t from = r.start;
  for (const auto& x : ranges_) {
    if (x.end <= from) continue;
    if (x.start >= r.end) break;
    if (x.start > from) out.push_back({from, x.start});
    from = std::max(from, x.end);
    if (from >= r.end) return out;
  }
  if (from < r.end) out.push_back({from, r.end});
  return out;
}

}  // namespace zdm::data
