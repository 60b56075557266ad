#include "common/cql/functions.h"

#include <array>
#include <cctype>
#include <optional>
#include <random>

namespace zdm::cql {
namespace {

struct Tok {
  enum Kind { kWord, kSymbol, kOther, kEnd } kind = kEnd;
  std::string text;  // words lower-cased
  std::size_t begin = 0, end = 0;
};

// A lexer keeping byte positions: words, one-character symbols, and everything the scan does
// not look into (strings, quoted identifiers, numbers) as kOther.
std::vector<Tok> tokenize(std::string_view s) {
  std::vector<Tok> out;
  std::size_t i = 0;
  auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      auto e = s.find("*/", i + 2);
      i = e == std::string_view::npos ? s.size() : e + 2;
    } else if (c == '\'' || c == '"') {
      std::size_t b = i++;
      while (i < s.size()) {
        if (s[i] == c) {
          if (i + 1 < s.size() && s[i + 1] == c) {
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        ++i;
      }
      out.push_back({Tok::kOther, "", b, i});
    } else if (c == '$' && i + 1 < s.size() && s[i + 1] == '$') {
      std::size_t b = i;
      auto e = s.find("$$", i + 2);
      i = e == std::string_view::npos ? s.size() : e + 2;
      out.push_back({Tok::kOther, "", b, i});
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t b = i;
      while (i < s.size() && (is_word(s[i]) || s[i] == '.' || s[i] == '-')) ++i;
      out.push_back({Tok::kOther, "#", b, i});  // a number, a uuid or a duration literal
    } else if (is_word(c)) {
      std::size_t b = i;
      while (i < s.size() && is_word(s[i])) ++i;
      std::string w(s.substr(b, i - b));
      for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.push_back({Tok::kWord, w, b, i});
    } else {
      out.push_back({Tok::kSymbol, std::string(1, c), i, i + 1});
      ++i;
    }
  }
  return out;
}

bool is(const std::vector<Tok>& t, std::size_t i, Tok::Kind k, std::string_view text) {
  return i < t.size() && t[i].kind == k && t[i].text == text;
}

// A zero-argument call `name ( )` at i; returns the index after ')'.
std::optional<std::size_t> empty_call(const std::vector<Tok>& t, std::size_t i,
                                      std::string_view name) {
  if (is(t, i, Tok::kWord, name) && is(t, i + 1, Tok::kSymbol, "(") &&
      is(t, i + 2, Tok::kSymbol, ")"))
    return i + 3;
  return std::nullopt;
}

// A timeuuid source: now() or currentTimeUUID().
std::optional<std::size_t> timeuuid_call(const std::vector<Tok>& t, std::size_t i) {
  if (auto e = empty_call(t, i, "now")) return e;
  return empty_call(t, i, "currenttimeuuid");
}

// The call starting at token i, if it is one the proxy generates: (value, index after it).
std::optional<std::pair<Generated, std::size_t>> call_at(const std::vector<Tok>& t, std::size_t i) {
  if (t[i].kind != Tok::kWord || !is(t, i + 1, Tok::kSymbol, "(")) return std::nullopt;
  if (auto e = timeuuid_call(t, i)) return std::pair{Generated::kTimeUuid, *e};
  if (auto e = empty_call(t, i, "uuid")) return std::pair{Generated::kUuid, *e};
  if (auto e = empty_call(t, i, "currenttimestamp")) return std::pair{Generated::kTimestamp, *e};
  if (auto e = empty_call(t, i, "currentdate")) return std::pair{Generated::kDate, *e};
  if (auto e = empty_call(t, i, "currenttime")) return std::pair{Generated::kTime, *e};
  static const std::array<std::pair<const char*, Generated>, 5> wrappers = {{
      {"totimestamp", Generated::kTimestamp},
      {"dateof", Generated::kTimestamp},
      {"todate", Generated::kDate},
      {"tounixtimestamp", Generated::kUnixMillis},
      {"unixtimestampof", Generated::kUnixMillis},
  }};
  for (const auto& [name, g] : wrappers) {
    if (t[i].text != name) continue;
    auto inner = timeuuid_call(t, i + 2);
    if (inner && is(t, *inner, Tok::kSymbol, ")")) return std::pair{g, *inner + 1};
  }
  return std::nullopt;
}

}  // namespace

StatementScan scan_statement(std::string_view cql) {
  StatementScan scan;
  std::vector<Tok> t = tokenize(cql);
  for (std::size_t i = 0; i < t.size();) {
    if (auto call = call_at(t, i)) {
      scan.calls.push_back({t[i].begin, t[call->second - 1].end, call->first,
                            scan.markers + static_cast<int>(scan.calls.size())});
      i = call->second;
      continue;
    }
    if (is(t, i, Tok::kSymbol, "?")) {
      ++scan.markers;
    } else if (is(t, i, Tok::kSymbol, ":") && i + 1 < t.size() && t[i + 1].kind == Tok::kWord &&
               t[i + 1].begin == t[i].end && !is(t, i + 2, Tok::kSymbol, "(")) {
      ++scan.markers;
      scan.named_markers = true;
      ++i;
    } else if (is(t, i, Tok::kWord, "if") && !is(t, i + 1, Tok::kWord, "not") && i > 0) {
      scan.conditional = true;  // IF EXISTS, IF col = …
    } else if (is(t, i, Tok::kWord, "if") && is(t, i + 1, Tok::kWord, "not") &&
               is(t, i + 2, Tok::kWord, "exists")) {
      scan.conditional = true;
    } else if (t[i].kind == Tok::kWord && is(t, i + 1, Tok::kSymbol, "=") && i + 4 < t.size() &&
               t[i + 2].kind == Tok::kWord && t[i + 2].text == t[i].text &&
               (is(t, i + 3, Tok::kSymbol, "+") || is(t, i + 3, Tok::kSymbol, "-")) &&
               t[i + 4].kind == Tok::kOther && t[i + 4].text == "#") {
      scan.counter_update = true;  // c = c + 1
    }
    ++i;
  }
  return scan;
}

Bytes generate(Generated g, int64_t now_us) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto be = [](uint64_t v, int n) {
    Bytes out(static_cast<std::size_t>(n));
    for (int k = 0; k < n; ++k)
      out[static_cast<std::size_t>(k)] = std::byte(v >> (8 * (n - 1 - k)));
    return out;
  };
  const int64_t ms = now_us / 1000;
  switch (g) {
    case Generated::kTimeUuid: {
      // RFC 4122 version 1: 100-ns intervals since 1582-10-15, random clock sequence and node.
      uint64_t ts = static_cast<uint64_t>(now_us) * 10 + 0x01B21DD213814000ULL;
      uint64_t hi = ((ts & 0xFFFFFFFFULL) << 32) | (((ts >> 32) & 0xFFFF) << 16) |
                    (0x1000 | ((ts >> 48) & 0x0FFF));
      uint64_t lo = (rng() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
      Bytes out = be(hi, 8);
      Bytes l = be(lo, 8);
      out.insert(out.end(), l.begin(), l.end());
      return out;
    }
    case Generated::kUuid: {
      uint64_t hi = (rng() & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
      uint64_t lo = (rng() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
      Bytes out = be(hi, 8);
      Bytes l = be(lo, 8);
      out.insert(out.end(), l.begin(), l.end());
      return out;
    }
    case Generated::kTimestamp:
    case Generated::kUnixMillis:
      return be(static_cast<uint64_t>(ms), 8);
    case Generated::kDate: {
      int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
      return be(static_cast<uint64_t>(days + (int64_t{1} << 31)), 4);
    }
    case Generated::kTime: {
      int64_t of_day = ((ms % 86400000) + 86400000) % 86400000;
      return be(static_cast<uint64_t>(of_day * 1000000 + (now_us % 1000) * 1000), 8);
    }
  }
  return {};
}

std::string literal(Generated g, BytesView v) {
  auto u = [&](std::size_t i) { return std::to_integer<uint64_t>(v[i]); };
  auto num = [&](std::size_t n) {
    uint64_t x = 0;
    for (std::size_t i = 0; i < n && i < v.size(); ++i) x = (x << 8) | u(i);
    return x;
  };
  switch (g) {
    case Generated::kTimeUuid:
    case Generated::kUuid: {
      static const char* hex = "0123456789abcdef";
      std::string out;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[u(i) >> 4];
        out += hex[u(i) & 15];
      }
      return out;
    }
    case Generated::kTimestamp:
    case Generated::kUnixMillis:
      return std::to_string(static_cast<int64_t>(num(8)));
    case Generated::kDate:
      return std::to_string(num(4));  // an unsigned date literal: days with 2^31 at the epoch
    case Generated::kTime:
      return std::to_string(static_cast<int64_t>(num(8)));  // nanoseconds since midnight
  }
  return "";
}

std::string replace_calls(std::string_view cql, const std::vector<FunctionCall>& calls,
                          const std::vector<std::string>& literals) {
  std::string out;
  out.reserve(cql.size() + 32 * calls.size());
  std::size_t pos = 0;
  for (std::size_t k = 0; k < calls.size(); ++k) {
    out.append(cql.substr(pos, calls[k].begin - pos));
    out += literals.at(k);
    pos = calls[k].end;
  }
  out.append(cql.substr(pos));
  return out;
}

std::string calls_to_markers(std::string_view cql, const StatementScan& scan) {
  std::vector<std::string> markers;
  for (std::size_t k = 0; k < scan.calls.size(); ++k)
    markers.push_back(scan.named_markers ? ":zdm_generated_" + std::to_string(k) : "?");
  return replace_calls(cql, scan.calls, markers);
}

}  // namespace zdm::cql
