#include "common/cql/classifier.h"

#include <cctype>
#include <optional>

namespace zdm::cql {
namespace {

struct Token {
  enum Kind { kWord, kQuoted, kString, kSymbol, kEnd } kind = kEnd;
  std::string text;  // words lower-cased; quoted identifiers unescaped; strings verbatim
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Token next() {
    skip_space_and_comments();
    Token t;
    if (pos_ >= s_.size()) return t;
    char c = s_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t b = pos_;
      while (pos_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
        ++pos_;
      t.kind = Token::kWord;
      t.text = lower(s_.substr(b, pos_ - b));
    } else if (c == '"') {
      t.kind = Token::kQuoted;
      ++pos_;
      while (pos_ < s_.size()) {
        if (s_[pos_] == '"') {
          if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '"') {
            t.text += '"';
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        t.text += s_[pos_++];
      }
    } else if (c == '\'') {
      t.kind = Token::kString;
      ++pos_;
      while (pos_ < s_.size()) {
        if (s_[pos_] == '\'') {
          if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '\'') {
            t.text += '\'';
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        t.text += s_[pos_++];
      }
    } else if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '$') {
      t.kind = Token::kString;
      auto end = s_.find("$$", pos_ + 2);
      std::size_t stop = end == std::string_view::npos ? s_.size() : end;
      t.text = std::string(s_.substr(pos_ + 2, stop - pos_ - 2));
      pos_ = end == std::string_view::npos ? s_.size() : end + 2;
    } else {
      t.kind = Token::kSymbol;
      t.text = std::string(1, c);
      ++pos_;
    }
    return t;
  }

  std::size_t position() const { return pos_; }
  std::string_view source() const { return s_; }

 private:
  static std::string lower(std::string_view w) {
    std::string out(w);
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  }
  void skip_space_and_comments() {
    for (;;) {
      while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (s_.substr(pos_, 2) == "--" || s_.substr(pos_, 2) == "//") {
        auto nl = s_.find('\n', pos_);
        pos_ = nl == std::string_view::npos ? s_.size() : nl + 1;
      } else if (s_.substr(pos_, 2) == "/*") {
        auto end = s_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
      } else {
        return;
      }
    }
  }
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool is_word(const Token& t, std::string_view w) {
  return t.kind == Token::kWord && t.text == w;
}
bool is_name(const Token& t) {
  return t.kind == Token::kWord || t.kind == Token::kQuoted;
}

// Reads `name` or `ks.name` starting at token `t`; returns the next token after it.
Token read_qualified(Lexer& lx, Token t, StatementInfo& info) {
  if (!is_name(t)) return t;
  std::string first = t.text;
  Token n = lx.next();
  if (n.kind == Token::kSymbol && n.text == ".") {
    Token second = lx.next();
    if (is_name(second)) {
      info.keyspace = first;
      info.table = second.text;
      return lx.next();
    }
    return second;
  }
  info.table = first;
  return n;
}

Token skip_if_exists(Lexer& lx, Token t) {
  if (is_word(t, "if")) {
    Token n = lx.next();
    if (is_word(n, "not")) n = lx.next();  // IF NOT EXISTS
    if (is_word(n, "exists")) return lx.next();
    return n;
  }
  return t;
}

void classify_select(Lexer& lx, StatementInfo& info) {
  // Selectors up to the top-level FROM, split on top-level commas.
  int depth = 0;
  std::size_t sel_begin = lx.position();
  std::string_view src = lx.source();
  for (;;) {
    std::size_t before = lx.position();
    Token t = lx.next();
    if (t.kind == Token::kEnd) return;
    if (t.kind == Token::kSymbol && t.text == "(") ++depth;
    if (t.kind == Token::kSymbol && t.text == ")") --depth;
    if (depth == 0 && is_word(t, "from")) {
      std::string_view sel = src.substr(sel_begin, before - sel_begin);
      // Split the selector text on top-level commas, outside quoted identifiers and strings.
      int d = 0;
      char quote = 0;
      std::string cur;
      auto flush = [&] {
        std::size_t b = cur.find_first_not_of(" \t\r\n");
        std::size_t e = cur.find_last_not_of(" \t\r\n");
        if (b != std::string::npos) info.selectors.push_back(cur.substr(b, e - b + 1));
        cur.clear();
      };
      for (char c : sel) {
        if (quote) {
          if (c == quote) quote = 0;  // a doubled quote closes and reopens
        } else if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == '(') {
          ++d;
        } else if (c == ')') {
          --d;
        }
        if (c == ',' && d == 0 && !quote) {
          flush();
        } else {
          cur += c;
        }
      }
      flush();
      // Drop the JSON / DISTINCT modifiers from the first selector.
      if (!info.selectors.empty()) {
        for (std::string_view mod : {"json ", "JSON ", "distinct ", "DISTINCT "}) {
          if (info.selectors[0].rfind(mod, 0) == 0) info.selectors[0].erase(0, mod.size());
        }
      }
      read_qualified(lx, lx.next(), info);
      return;
    }
  }
}

}  // namespace

const char* statement_kind_name(StatementKind k) {
  switch (k) {
    case StatementKind::kSelect:
      return "select";
    case StatementKind::kInsert:
      return "insert";
    case StatementKind::kUpdate:
      return "update";
    case StatementKind::kDelete:
      return "delete";
    case StatementKind::kBatch:
      return "batch";
    case StatementKind::kUse:
      return "use";
    case StatementKind::kDdl:
      return "ddl";
    case StatementKind::kOther:
      return "other";
  }
  return "other";
}

StatementInfo classify(std::string_view cql) {
  StatementInfo info;
  Lexer lx(cql);
  Token t = lx.next();
  if (t.kind != Token::kWord) return info;
  const std::string& w = t.text;
  if (w == "select") {
    info.kind = StatementKind::kSelect;
    classify_select(lx, info);
  } else if (w == "insert") {
    info.kind = StatementKind::kInsert;
    Token n = lx.next();
    if (is_word(n, "into")) read_qualified(lx, lx.next(), info);
  } else if (w == "update") {
    info.kind = StatementKind::kUpdate;
    read_qualified(lx, lx.next(), info);
  } else if (w == "delete") {
    info.kind = StatementKind::kDelete;
    int depth = 0;
    for (Token n = lx.next(); n.kind != Token::kEnd; n = lx.next()) {
      if (n.kind == Token::kSymbol && (n.text == "(" || n.text == "[")) ++depth;
      if (n.kind == Token::kSymbol && (n.text == ")" || n.text == "]")) --depth;
      if (depth == 0 && is_word(n, "from")) {
        read_qualified(lx, lx.next(), info);
        break;
      }
    }
  } else if (w == "begin") {
    info.kind = StatementKind::kBatch;
  } else if (w == "use") {
    info.kind = StatementKind::kUse;
    Token n = lx.next();
    if (is_name(n)) info.keyspace = n.text;
  } else if (w == "create" || w == "alter" || w == "drop") {
    info.kind = StatementKind::kDdl;
    Token n = lx.next();
    if (is_word(n, "keyspace") || is_word(n, "schema")) {
      Token k = skip_if_exists(lx, lx.next());
      if (is_name(k)) info.keyspace = k.text;
    } else if (is_word(n, "index") || is_word(n, "custom")) {
      // CREATE [CUSTOM] INDEX [IF NOT EXISTS] [name] ON [ks.]table; DROP INDEX [ks.]name
      Token t = lx.next();
      if (is_word(t, "index")) t = lx.next();
      t = skip_if_exists(lx, t);
      if (w == "drop") {
        read_qualified(lx, t, info);
      } else {
        while (t.kind != Token::kEnd && !is_word(t, "on")) t = lx.next();
        if (is_word(t, "on")) read_qualified(lx, lx.next(), info);
      }
    } else if (is_word(n, "table") || is_word(n, "columnfamily") || is_word(n, "type") ||
               is_word(n, "function") || is_word(n, "aggregate")) {
      read_qualified(lx, skip_if_exists(lx, lx.next()), info);
    } else if (is_word(n, "materialized")) {
      Token v = lx.next();
      if (is_word(v, "view")) read_qualified(lx, skip_if_exists(lx, lx.next()), info);
    }
  } else if (w == "truncate") {
    info.kind = StatementKind::kDdl;
    Token n = lx.next();
    if (is_word(n, "table") || is_word(n, "columnfamily")) n = lx.next();
    read_qualified(lx, n, info);
  }
  return info;
}

bool is_system_keyspace(std::string_view ks) {
  return ks == "system" || ks.rfind("system_", 0) == 0 || ks.rfind("dse_", 0) == 0;
}

}  // namespace zdm::cql
