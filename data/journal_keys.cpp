#include "data/journal_keys.h"

#include <cctype>
#include <optional>

#include "common/cql/messages.h"
#include "data/rows.h"

namespace zdm::data::keys {

namespace {

// A lexer over CQL text keeping byte positions (cassandra's Lexer.g, the parts a write's key
// needs). Markers carry their index among the statement's bind markers.
struct Tok {
  enum Kind { kIdent, kQuoted, kString, kNumber, kMarker, kSymbol } kind = kSymbol;
  std::string text;  // identifiers lower-cased, quoted ones unescaped; a symbol's character
  std::size_t begin = 0, end = 0;
  int marker = -1;  // kMarker: its index (? and :name alike)
};

// Text that cannot be read: `why` is the unverifiable reason.
struct Unreadable {
  std::string why;
};

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool hex_char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

// A uuid literal (8-4-4-4-12 hex digits) starting at i, not part of a longer word.
bool uuid_at(std::string_view s, std::size_t i) {
  if (s.size() - i < 36 || (i > 0 && word_char(s[i - 1]))) return false;
  for (std::size_t k = 0; k < 36; ++k) {
    const bool dash = k == 8 || k == 13 || k == 18 || k == 23;
    if (dash ? s[i + k] != '-' : !hex_char(s[i + k])) return false;
  }
  return i + 36 == s.size() || !word_char(s[i + 36]);
}

// The end of a quoted run starting at i (s[i] is the quote), doubled quotes kept inside.
// Throws Unreadable when it is not closed.
std::size_t quoted_end(std::string_view s, std::size_t i, const char* what) {
  const char q = s[i];
  for (std::size_t k = i + 1; k < s.size(); ++k) {
    if (s[k] != q) continue;
    if (k + 1 < s.size() && s[k + 1] == q) {
      ++k;
      continue;
    }
    return k + 1;
  }
  throw Unreadable{std::string("unterminated ") + what};
}

std::vector<Tok> tokenize(std::string_view s) {
  std::vector<Tok> out;
  std::size_t i = 0;
  int markers = 0;
  std::vector<char> open;  // brackets open at i
  // Whether a ':' before an identifier is a named marker: not inside {…} right after a name or
  // a literal (a UDT literal's field, a map literal's key: {f:true}).
  auto marker_position = [&out, &open] {
    if (out.empty() || open.empty() || open.back() != '{') return true;
    const Tok& p = out.back();
    return p.kind == Tok::kSymbol || p.kind == Tok::kMarker;
  };
  while (i < s.size()) {
    const char c = s[i];
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if ((c == '-' && next == '-') || (c == '/' && next == '/')) {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && next == '*') {
      const auto e = s.find("*/", i + 2);
      if (e == std::string_view::npos) throw Unreadable{"unterminated comment"};
      i = e + 2;
    } else if (c == '\'') {
      const std::size_t e = quoted_end(s, i, "string literal");
      out.push_back({Tok::kString, "", i, e});
      i = e;
    } else if (c == '"') {
      const std::size_t e = quoted_end(s, i, "quoted identifier");
      std::string name;
      for (std::size_t k = i + 1; k + 1 < e; ++k) {
        name += s[k];
        if (s[k] == '"') ++k;  // "" → "
      }
      out.push_back({Tok::kQuoted, std::move(name), i, e});
      i = e;
    } else if (c == '$' && next == '$') {
      const auto e = s.find("$$", i + 2);
      if (e == std::string_view::npos) throw Unreadable{"unterminated $$ string"};
      out.push_back({Tok::kString, "", i, e + 2});
      i = e + 2;
    } else if (uuid_at(s, i)) {
      out.push_back({Tok::kNumber, "", i, i + 36});
      i += 36;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      // Integers, floats with exponents, 0x blobs, durations (1h30m).
      const std::size_t b = i;
      while (i < s.size()) {
        if (word_char(s[i]) || s[i] == '.') {
          ++i;
        } else if ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E') &&
                   i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
          ++i;
        } else {
          break;
        }
      }
      out.push_back({Tok::kNumber, "", b, i});
    } else if (word_char(c)) {
      const std::size_t b = i;
      while (i < s.size() && word_char(s[i])) ++i;
      std::string w(s.substr(b, i - b));
      for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.push_back({Tok::kIdent, std::move(w), b, i});
    } else if (c == '?') {
      out.push_back({Tok::kMarker, "?", i, i + 1, markers++});
      ++i;
    } else if (c == ':' && (word_char(next) || next == '"') && marker_position()) {
      const std::size_t b = i++;
      if (s[i] == '"') {
        i = quoted_end(s, i, "quoted identifier");
      } else {
        while (i < s.size() && word_char(s[i])) ++i;
      }
      out.push_back({Tok::kMarker, ":", b, i, markers++});
    } else {
      if (c == '(' || c == '[' || c == '{') open.push_back(c);
      if ((c == ')' || c == ']' || c == '}') && !open.empty()) open.pop_back();
      out.push_back({Tok::kSymbol, std::string(1, c), i, i + 1});
      ++i;
    }
  }
  return out;
}

bool sym(const Tok& t, char c) {
  return t.kind == Tok::kSymbol && t.text.size() == 1 && t.text[0] == c;
}
bool word(const Tok& t, std::string_view w) {
  return t.kind == Tok::kIdent && t.text == w;
}
bool name_tok(const Tok& t) {
  return t.kind == Tok::kIdent || t.kind == Tok::kQuoted;
}
int depth_change(const Tok& t) {
  if (t.kind != Tok::kSymbol) return 0;
  if (t.text == "(" || t.text == "[" || t.text == "{") return 1;
  if (t.text == ")" || t.text == "]" || t.text == "}") return -1;
  return 0;
}

// The first index in [b, e) at depth 0 (relative to b) where `stop` holds, or e. Throws
// Unreadable when brackets close more than they open.
template <class Pred>
std::size_t find_top(const std::vector<Tok>& t, std::size_t b, std::size_t e, Pred stop) {
  int depth = 0;
  for (std::size_t i = b; i < e; ++i) {
    if (depth == 0 && stop(t[i])) return i;
    depth += depth_change(t[i]);
    if (depth < 0) throw Unreadable{"unbalanced brackets"};
  }
  return e;
}

// [b, e) cut at depth-0 commas.
std::vector<std::pair<std::size_t, std::size_t>> split_commas(const std::vector<Tok>& t,
                                                              std::size_t b, std::size_t e) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (b == e) return out;
  for (;;) {
    const std::size_t c = find_top(t, b, e, [](const Tok& x) { return sym(x, ','); });
    out.emplace_back(b, c);
    if (c == e) return out;
    b = c + 1;
  }
}

// The index of the bracket closing the one at `open`, or throws Unreadable.
std::size_t closing(const std::vector<Tok>& t, std::size_t open, std::size_t e) {
  int depth = 0;
  for (std::size_t i = open; i < e; ++i) {
    depth += depth_change(t[i]);
    if (depth == 0) return i;
  }
  throw Unreadable{"unbalanced brackets"};
}

// Reads one statement of the text: its partitions go to `out`.
class StatementReader {
 public:
  StatementReader(std::string_view text, const std::vector<Tok>& t,
                  std::span<const cql::Value> values, const std::string& keyspace,
                  const SchemaLookup& schema)
      : s_(text), t_(t), values_(values), keyspace_(keyspace), schema_(schema) {}

  // Statement [b, e) → `out` (its partitions, or one unverifiable reason).
  void read(std::size_t b, std::size_t e, Extracted& out) {
    prefix_ = "";
    try {
      std::vector<Partition> found = statement(b, e);
      for (auto& p : found) out.partitions.push_back(std::move(p));
    } catch (const Unreadable& u) {
      out.unverifiable.push_back(prefix_ + u.why);
    }
  }

 private:
  std::vector<Partition> statement(std::size_t b, std::size_t e) {
    if (b >= e) throw Unreadable{"empty statement"};
    if (word(t_[b], "insert")) return insert(b + 1, e);
    if (word(t_[b], "update")) {
      std::size_t i = table(b + 1, e);
      return where(find_top(t_, i, e, [](const Tok& x) { return word(x, "where"); }), e);
    }
    if (word(t_[b], "delete")) {
      const std::size_t f = find_top(t_, b + 1, e, [](const Tok& x) { return word(x, "from"); });
      if (f == e) throw Unreadable{"malformed DELETE (no FROM)"};
      std::size_t i = table(f + 1, e);
      return where(find_top(t_, i, e, [](const Tok& x) { return word(x, "where"); }), e);
    }
    throw Unreadable{"not an INSERT, UPDATE or DELETE"};
  }

  // `[ks.]t` at i: sets the table and its schema; returns the index after the name.
  std::size_t table(std::size_t i, std::size_t e) {
    if (i >= e || !name_tok(t_[i])) throw Unreadable{"malformed statement (no table name)"};
    std::string ks = keyspace_, tb = t_[i].text;
    ++i;
    if (i + 1 < e && sym(t_[i], '.') && name_tok(t_[i + 1])) {
      ks = tb;
      tb = t_[i + 1].text;
      i += 2;
    }
    if (ks.empty()) throw Unreadable{tb + ": no keyspace (an unqualified name, none in use)"};
    prefix_ = ks + "." + tb + ": ";
    ks_ = ks;
    tb_ = tb;
    schema_of_ = schema_(ks, tb);
    if (!schema_of_) throw Unreadable{"the table is not in the schema"};
    if (schema_of_->partition_key.empty()) throw Unreadable{"the table has no partition key"};
    return i;
  }

  // Partition-key column index of `name`, or -1.
  int pk_index(const std::string& name) const {
    const auto& pk = schema_of_->partition_key;
    for (std::size_t k = 0; k < pk.size(); ++k)
      if (pk[k].name == name) return static_cast<int>(k);
    return -1;
  }

  std::vector<Partition> insert(std::size_t i, std::size_t e) {
    if (i >= e || !word(t_[i], "into")) throw Unreadable{"malformed INSERT (no INTO)"};
    i = table(i + 1, e);
    if (i < e && word(t_[i], "json")) throw Unreadable{"INSERT JSON"};
    if (i >= e || !sym(t_[i], '(')) throw Unreadable{"malformed INSERT (no column list)"};
    const std::size_t names_end = closing(t_, i, e);
    const auto names = split_commas(t_, i + 1, names_end);
    i = names_end + 1;
    if (i + 1 >= e || !word(t_[i], "values") || !sym(t_[i + 1], '('))
      throw Unreadable{"malformed INSERT (no VALUES)"};
    const std::size_t values_end = closing(t_, i + 1, e);
    const auto terms = split_commas(t_, i + 2, values_end);
    if (terms.size() != names.size())
      throw Unreadable{"malformed INSERT (" + std::to_string(names.size()) + " columns, " +
                       std::to_string(terms.size()) + " values)"};
    std::vector<std::vector<KeyValue>> choices(schema_of_->partition_key.size());
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto [nb, ne] = names[k];
      if (ne != nb + 1 || !name_tok(t_[nb])) throw Unreadable{"malformed INSERT column list"};
      const int pi = pk_index(t_[nb].text);
      if (pi < 0) continue;
      if (!choices[pi].empty()) throw Unreadable{"partition key '" + t_[nb].text + "' twice"};
      choices[pi].push_back(term(terms[k].first, terms[k].second, t_[nb].text));
    }
    return product(choices);
  }

  // The WHERE clause at w (e when none) up to e.
  std::vector<Partition> where(std::size_t w, std::size_t e) {
    if (w >= e) throw Unreadable{"malformed statement (no WHERE)"};
    const std::size_t stop = find_top(t_, w + 1, e, [](const Tok& x) { return word(x, "if"); });
    std::vector<std::vector<KeyValue>> choices(schema_of_->partition_key.size());
    std::vector<bool> restricted(choices.size(), false);
    std::size_t b = w + 1;
    for (;;) {
      const std::size_t a = find_top(t_, b, stop, [](const Tok& x) { return word(x, "and"); });
      relation(b, a, choices, restricted);
      if (a == stop) break;
      b = a + 1;
    }
    for (std::size_t k = 0; k < choices.size(); ++k)
      if (!restricted[k])
        throw Unreadable{"partition key '" + schema_of_->partition_key[k].name +
                         "' not restricted by = or IN"};
    return product(choices);
  }

  void relation(std::size_t b, std::size_t e, std::vector<std::vector<KeyValue>>& choices,
                std::vector<bool>& restricted) {
    if (b >= e) throw Unreadable{"malformed WHERE clause"};
    if (!name_tok(t_[b]) || b + 1 >= e) return;  // (c1, c2) = …, token(…): not a partition key
    const std::string& col = t_[b].text;
    const int pi = pk_index(col);
    if (pi < 0) return;
    if (restricted[pi]) throw Unreadable{"partition key '" + col + "' restricted twice"};
    restricted[pi] = true;
    auto& out = choices[pi];
    if (sym(t_[b + 1], '=')) {
      out.push_back(term(b + 2, e, col));
    } else if (word(t_[b + 1], "in")) {
      if (b + 3 == e && t_[b + 2].kind == Tok::kMarker) {
        out = bound_list(t_[b + 2].marker, col);
      } else if (b + 2 < e && sym(t_[b + 2], '(') && closing(t_, b + 2, e) == e - 1) {
        for (const auto& [tb, te] : split_commas(t_, b + 3, e - 1))
          out.push_back(term(tb, te, col));
      } else {
        throw Unreadable{"malformed IN on partition key '" + col + "'"};
      }
    } else {
      throw Unreadable{"partition key '" + col + "' restricted by other than = or IN"};
    }
  }

  const cql::Value& bound(int marker, const std::string& col) const {
    if (marker < 0 || static_cast<std::size_t>(marker) >= values_.size())
      throw Unreadable{"fewer bound values than bind markers"};
    const cql::Value& v = values_[static_cast<std::size_t>(marker)];
    if (v.kind == cql::Value::Kind::kUnset)
      throw Unreadable{"partition key '" + col + "' bound to unset"};
    if (v.kind == cql::Value::Kind::kNull)
      throw Unreadable{"partition key '" + col + "' bound to null"};
    return v;
  }

  // `pk IN ?`: the elements of the bound list ([int n] then n × [int len][bytes]).
  std::vector<KeyValue> bound_list(int marker, const std::string& col) const {
    const Bytes& b = bound(marker, col).bytes;
    auto int_at = [&b](std::size_t at) {
      if (b.size() < at + 4) throw Unreadable{"a malformed list bound to IN ?"};
      return static_cast<int32_t>(
          (std::to_integer<uint32_t>(b[at]) << 24) | (std::to_integer<uint32_t>(b[at + 1]) << 16) |
          (std::to_integer<uint32_t>(b[at + 2]) << 8) | std::to_integer<uint32_t>(b[at + 3]));
    };
    const int32_t n = int_at(0);
    if (n < 0 || static_cast<std::size_t>(n) > kMaxPartitionsPerStatement)
      throw Unreadable{"a list bound to IN ? of " + std::to_string(n) + " elements"};
    std::vector<KeyValue> out;
    std::size_t at = 4;
    for (int32_t k = 0; k < n; ++k) {
      const int32_t len = int_at(at);
      at += 4;
      if (len < 0) throw Unreadable{"partition key '" + col + "' bound to null"};
      if (b.size() - at < static_cast<std::size_t>(len))
        throw Unreadable{"a malformed list bound to IN ?"};
      KeyValue v;
      v.bound = true;
      v.bytes.assign(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
      out.push_back(std::move(v));
      at += static_cast<std::size_t>(len);
    }
    return out;
  }

  // The term [b, e) giving partition-key column `col`.
  KeyValue term(std::size_t b, std::size_t e, const std::string& col) const {
    if (b >= e) throw Unreadable{"malformed statement (an empty term)"};
    KeyValue v;
    if (e == b + 1 && t_[b].kind == Tok::kMarker) {
      v.bound = true;
      v.bytes = bound(t_[b].marker, col).bytes;
      return v;
    }
    if (t_[b].kind == Tok::kIdent && e > b + 1 && sym(t_[b + 1], '('))
      throw Unreadable{"partition key '" + col + "' from a function call (" + t_[b].text + "())"};
    int depth = 0;
    for (std::size_t i = b; i < e; ++i) {
      if (t_[i].kind == Tok::kMarker)
        throw Unreadable{"partition key '" + col + "' has a bind marker inside a literal"};
      if (sym(t_[i], ';')) throw Unreadable{"malformed statement"};
      depth += depth_change(t_[i]);
      if (depth < 0) throw Unreadable{"unbalanced brackets"};
    }
    if (depth != 0) throw Unreadable{"unbalanced brackets"};
    if (e == b + 1 && t_[b].kind == Tok::kIdent) {
      const std::string& w = t_[b].text;
      if (w == "null") throw Unreadable{"partition key '" + col + "' is null"};
      if (w != "true" && w != "false" && w != "nan" && w != "infinity")
        throw Unreadable{"partition key '" + col + "' is not a literal"};
    }
    for (std::size_t i = b; i < e; ++i) {
      if (i > b && t_[i].begin != t_[i - 1].end) v.literal += ' ';
      v.literal += s_.substr(t_[i].begin, t_[i].end - t_[i].begin);
    }
    return v;
  }

  // Every combination of the columns' values (IN lists multiply).
  std::vector<Partition> product(const std::vector<std::vector<KeyValue>>& choices) const {
    std::size_t n = 1;
    for (const auto& c : choices) {
      if (c.empty()) return {};  // IN (): no partition
      if (c.size() > kMaxPartitionsPerStatement / n)
        throw Unreadable{"more than " + std::to_string(kMaxPartitionsPerStatement) +
                         " partitions (IN)"};
      n *= c.size();
    }
    std::vector<Partition> out;
    out.reserve(n);
    for (std::size_t k = 0; k < n; ++k) {
      Partition p{ks_, tb_, {}};
      std::size_t rest = k;
      for (const auto& c : choices) {
        p.key.push_back(c[rest % c.size()]);
        rest /= c.size();
      }
      out.push_back(std::move(p));
    }
    return out;
  }

  std::string_view s_;
  const std::vector<Tok>& t_;
  std::span<const cql::Value> values_;
  const std::string& keyspace_;
  const SchemaLookup& schema_;
  std::string prefix_;  // "ks.t: " once the table is known
  std::string ks_, tb_;
  const TableSchema* schema_of_ = nullptr;
};

bool statement_start(const Tok& t) {
  return word(t, "insert") || word(t, "update") || word(t, "delete");
}

void merge(Extracted& into, Extracted&& from) {
  for (auto& p : from.partitions) into.partitions.push_back(std::move(p));
  for (auto& r : from.unverifiable) into.unverifiable.push_back(std::move(r));
}

}  // namespace

Extracted extract_statement(std::string_view cql, std::span<const cql::Value> values,
                            const std::string& keyspace, const SchemaLookup& schema) {
  Extracted out;
  std::vector<Tok> t;
  try {
    t = tokenize(cql);
  } catch (const Unreadable& u) {
    out.unverifiable.push_back(u.why);
    return out;
  }
  std::size_t n = t.size();
  while (n > 0 && sym(t[n - 1], ';')) --n;
  StatementReader reader(cql, t, values, keyspace, schema);
  if (n == 0 || !word(t[0], "begin")) {
    reader.read(0, n, out);
    return out;
  }
  try {
    std::size_t i = 1;
    if (i < n && (word(t[i], "unlogged") || word(t[i], "counter") || word(t[i], "logged"))) ++i;
    if (i >= n || !word(t[i], "batch")) throw Unreadable{"malformed BATCH (no BATCH after BEGIN)"};
    if (n < 2 || !word(t[n - 2], "apply") || !word(t[n - 1], "batch") || n - 2 <= i)
      throw Unreadable{"malformed BATCH (no APPLY BATCH)"};
    const std::size_t end = n - 2;
    // USING … before the first statement; statements follow, ';' between them optional.
    std::size_t b = find_top(t, i + 1, end, statement_start);
    while (b < end) {
      const std::size_t e =
          find_top(t, b + 1, end, [](const Tok& x) { return statement_start(x) || sym(x, ';'); });
      reader.read(b, e, out);
      b = e;
      while (b < end && sym(t[b], ';')) ++b;
      if (b < end && !statement_start(t[b])) throw Unreadable{"malformed BATCH"};
    }
  } catch (const Unreadable& u) {
    out.unverifiable.push_back(u.why);
  }
  return out;
}

Extracted extract_body(uint8_t version, uint8_t opcode, std::string_view body,
                       const std::string& keyspace, const SchemaLookup& schema) {
  Extracted out;
  const cql::BytesView view(reinterpret_cast<const std::byte*>(body.data()), body.size());
  try {
    cql::Reader r(view);
    if (opcode == static_cast<uint8_t>(cql::Opcode::kQuery)) {
      const cql::QueryMsg q = cql::QueryMsg::decode(r, version);
      if (q.params.flags & cql::query_flag::kNamesForValues) {
        out.unverifiable.push_back("named values (QUERY flag 0x40)");
        return out;
      }
      const std::string& ks = q.params.keyspace.empty() ? keyspace : q.params.keyspace;
      return extract_statement(q.query, q.params.values, ks, schema);
    }
    if (opcode == static_cast<uint8_t>(cql::Opcode::kBatch)) {
      const cql::BatchMsg b = cql::BatchMsg::decode(r, version);
      if (b.flags & cql::query_flag::kNamesForValues) {
        out.unverifiable.push_back("named values (BATCH flag 0x40)");
        return out;
      }
      const std::string& ks = b.keyspace.empty() ? keyspace : b.keyspace;
      for (const auto& c : b.children) {
        if (c.prepared) {
          out.unverifiable.push_back("a prepared statement in a BATCH");
          continue;
        }
        merge(out, extract_statement(c.query, c.values, ks, schema));
      }
      return out;
    }
    out.unverifiable.push_back("opcode " + std::to_string(opcode) + " is neither QUERY nor BATCH");
  } catch (const std::exception& e) {
    out.partitions.clear();
    out.unverifiable.push_back(std::string("the request body does not decode: ") + e.what());
  }
  return out;
}

std::string key_text(const TableSchema& t, const Partition& p) {
  std::string out;
  for (std::size_t k = 0; k < p.key.size() && k < t.partition_key.size(); ++k) {
    const auto& c = t.partition_key[k];
    const auto& v = p.key[k];
    out += (out.empty() ? "" : ", ") + c.name + "=" +
           (v.bound ? literal(c.type, cql::BytesView(v.bytes)) : v.literal);
  }
  return out;
}

std::vector<cql::Value> where_values(const Partition& p) {
  std::vector<cql::Value> out;
  for (const auto& v : p.key)
    if (v.bound) out.push_back(cql::Value::of(v.bytes));
  return out;
}

std::string where_clause(const TableSchema& t, const Partition& p) {
  std::string out;
  for (std::size_t k = 0; k < p.key.size() && k < t.partition_key.size(); ++k)
    out += (k ? " AND " : "") + quote(t.partition_key[k].name) + " = " +
           (p.key[k].bound ? std::string("?") : p.key[k].literal);
  return out;
}

}  // namespace zdm::data::keys
