// Internals shared by the parts of the template engine (lexer, parser, blocks, evaluator,
// filters, tests). The public API is deployer/template.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "template.h"

namespace zdm::deploy::tmpl {

// A value as text for messages and output. Strings from a template or a vars file need not be
// valid UTF-8; dump() would throw json's type_error past every caller.
inline std::string show(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// `s` without leading and trailing spaces, tabs, CR and LF.
inline std::string trim_copy(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

// A mapping's keys, in its order.
inline Json keys_of(const Json& obj) {
  Json out = Json::array();
  for (auto& [k, v] : obj.items()) out.push_back(k);
  return out;
}

// Deepest nesting of expressions ("((((x))))", "[[[x]]]", "- - x") and of blocks
// ("{% if %}{% if %}..."). The parsers and the evaluator recurse once per level: a bound keeps a
// template from exhausting the stack. Real templates nest a few levels.
constexpr int kMaxNesting = 100;
// Longest expression, in tokens.
constexpr std::size_t kMaxTokens = 1000;

// Counts one level of recursion for the lifetime of the guard.
struct NestingGuard {
  explicit NestingGuard(int& depth) : depth_(depth) { ++depth_; }
  ~NestingGuard() { --depth_; }
  NestingGuard(const NestingGuard&) = delete;
  NestingGuard& operator=(const NestingGuard&) = delete;
  int& depth_;
};

}  // namespace zdm::deploy::tmpl
