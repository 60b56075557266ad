#include "engine/diff.h"
#include "common/util/strings.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <vector>

#include <fmt/format.h>

namespace zdm::deploy {

using util::lower;
namespace {

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) {
      out.push_back(s.substr(pos));
      break;
    }
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

}  // namespace

std::string unified_diff(std::string_view before, std::string_view after,
                         const std::string& label_before, const std::string& label_after,
                         int context, size_t max_lines) {
  if (before == after) return "";
  auto a = split_lines(before), b = split_lines(after);
  std::string head = fmt::format("--- {}\n+++ {}\n", label_before, label_after);
  if (a.size() > max_lines || b.size() > max_lines)
    return head + fmt::format("@@ files differ ({} and {} lines: too long to show) @@\n", a.size(),
                              b.size());
  // LCS table from the end: lcs[i][j] = common lines of a[i..] and b[j..].
  size_t n = a.size(), m = b.size();
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  // The edit script: ' ' keep, '-' remove from a, '+' add from b.
  struct Op {
    char kind;
    size_t ai, bi;
  };
  std::vector<Op> ops;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({' ', i++, j++});
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ops.push_back({'+', i, j++});
    } else {
      ops.push_back({'-', i++, j});
    }
  }
  std::string out = head;
  size_t k = 0;
  while (k < ops.size()) {
    if (ops[k].kind == ' ') {
      ++k;
      continue;
    }
    // A hunk: from `context` lines before this change to `context` after the last change
    // that is closer than 2*context to the previous one.
    size_t start = k >= static_cast<size_t>(context) ? k - context : 0;
    size_t end = k;
    size_t last_change = k;
    while (end < ops.size()) {
      if (ops[end].kind != ' ') last_change = end;
      if (end - last_change > static_cast<size_t>(2 * context)) break;
      ++end;
    }
    end = std::min(ops.size(), last_change + context + 1);
    size_t a_start = ops[start].ai, b_start = ops[start].bi, a_len = 0, b_len = 0;
    std::string body;
    for (size_t x = start; x < end; ++x) {
      const Op& op = ops[x];
      if (op.kind != '+') ++a_len;
      if (op.kind != '-') ++b_len;
      body += op.kind;
      body += std::string(op.kind == '+' ? b[op.bi] : a[op.ai]);
      body += '\n';
    }
    out += fmt::format("@@ -{},{} +{},{} @@\n", a_len ? a_start + 1 : a_start, a_len,
                       b_len ? b_start + 1 : b_start, b_len);
    out += body;
    k = end;
  }
  return out;
}

bool is_secret_name(std::string_view name) {
  std::string l = lower(name);
  // Where a secret is kept is not one: ansible_ssh_private_key_file's value is a path, and
  // errors must name it ("private key FILE is protected by a passphrase ...").
  for (const char* where : {"_file", "_path", "_filename", "_dir"})
    if (l.ends_with(where)) return false;
  for (const char* w : {"password", "passwd", "token", "secret", "passphrase", "private_key"})
    if (l.find(w) != std::string::npos) return true;
  return false;
}

std::string redact_secret_lines(std::string_view text) {
  static const std::regex line_re(R"(^(\s*-?\s*["']?([A-Za-z0-9_.-]+)["']?\s*[:=]\s*)(\S.*)$)");
  std::string out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    bool last = nl == std::string_view::npos;
    std::string line(text.substr(pos, last ? std::string_view::npos : nl - pos));
    std::smatch m;
    if (std::regex_match(line, m, line_re) && is_secret_name(m[2].str())) {
      std::string v = m[3].str();
      if (v != "\"\"" && v != "''" && v != "null" && v != "~") line = m[1].str() + "\"<redacted>\"";
    }
    out += line;
    if (last) break;
    out += '\n';
    pos = nl + 1;
  }
  return out;
}

void Redactor::add(const std::string& secret) {
  if (secret.size() < 4) return;
  std::lock_guard lock(mu_);
  secrets_.insert(secret);
}

bool Redactor::empty() const {
  std::lock_guard lock(mu_);
  return secrets_.empty();
}

std::string Redactor::apply(std::string text) const {
  std::lock_guard lock(mu_);
  // Longest first: a secret that contains another is replaced whole.
  std::vector<std::string> order(secrets_.begin(), secrets_.end());
  std::sort(order.begin(), order.end(),
            [](const auto& x, const auto& y) { return x.size() > y.size(); });
  for (const auto& s : order) {
    size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), "********");
      pos += 8;
    }
  }
  return text;
}

}  // namespace zdm::deploy
