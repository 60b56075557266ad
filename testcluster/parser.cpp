#include "testcluster/parser.h"

#include <cctype>

namespace zdm::testcluster {
namespace {

struct Token {
  enum class Type : uint8_t { kIdent, kQuotedIdent, kString, kNumber, kHex, kUuid, kSymbol, kEnd };
  Type type = Type::kEnd;
  std::string text;
  std::size_t pos = 0;
};

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}
bool is_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// True if s[pos..] starts with a UUID literal (8-4-4-4-12 hex digits) not followed by an
// identifier character.
bool uuid_at(std::string_view s, std::size_t pos) {
  static constexpr int kGroups[] = {8, 4, 4, 4, 12};
  std::size_t p = pos;
  for (int g = 0; g < 5; ++g) {
    if (g > 0) {
      if (p >= s.size() || s[p] != '-') return false;
      ++p;
    }
    for (int i = 0; i < kGroups[g]; ++i, ++p)
      if (p >= s.size() || !is_hex(s[p])) return false;
  }
  return p >= s.size() || !is_ident_char(s[p]);
}

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {  // -- comment
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    Token t;
    t.pos = i;
    if (uuid_at(s, i)) {
      t.type = Token::Type::kUuid;
      t.text = lower(s.substr(i, 36));
      i += 36;
    } else if (c == '0' && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
      t.type = Token::Type::kHex;
      i += 2;
      std::size_t b = i;
      while (i < s.size() && is_hex(s[i])) ++i;
      t.text = std::string(s.substr(b, i - b));
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      t.type = Token::Type::kNumber;
      std::size_t b = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      }
      if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        std::size_t e = i + 1;
        if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
        if (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) {
          i = e;
          while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        }
      }
      t.text = std::string(s.substr(b, i - b));
      if (i < s.size() && is_ident_char(s[i])) {
        // An identifier starting with digits is not CQL; report it as such.
        throw SyntaxError("line 1:" + std::to_string(b) + " no viable alternative at input '" +
                          std::string(s.substr(b, i + 1 - b)) + "'");
      }
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      t.type = Token::Type::kIdent;
      std::size_t b = i;
      while (i < s.size() && is_ident_char(s[i])) ++i;
      t.text = std::string(s.substr(b, i - b));
    } else if (c == '\'') {
      t.type = Token::Type::kString;
      ++i;
      for (;;) {
        if (i >= s.size())
          throw SyntaxError("line 1:" + std::to_string(t.pos) + " unterminated string literal");
        if (s[i] == '\'') {
          if (i + 1 < s.size() && s[i + 1] == '\'') {
            t.text += '\'';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        t.text += s[i++];
      }
    } else if (c == '"') {
      t.type = Token::Type::kQuotedIdent;
      ++i;
      for (;;) {
        if (i >= s.size()) throw SyntaxError("unterminated quoted identifier");
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            t.text += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        t.text += s[i++];
      }
    } else {
      t.type = Token::Type::kSymbol;
      if ((c == '<' || c == '>' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
        t.text = std::string(s.substr(i, 2));
        i += 2;
      } else if (std::string_view("(),;=<>.*?:[]{}+-").find(c) != std::string_view::npos) {
        t.text = std::string(1, c);
        ++i;
      } else {
        throw SyntaxError("line 1:" + std::to_string(i) + " no viable alternative at character '" +
                          std::string(1, c) + "'");
      }
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.pos = s.size();
  out.push_back(end);
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view q) : query_(q), toks_(tokenize(q)) {}

  Statement parse() {
    Statement st;
    stmt_ = &st;
    st.body = statement();
    while (symbol(";")) {
    }
    if (peek().type != Token::Type::kEnd)
      throw SyntaxError(where(peek().pos) + " mismatched input '" + peek().text +
                        "' expecting EOF");
    return st;
  }

 private:
  using Body = decltype(Statement::body);

  const Token& peek(std::size_t ahead = 0) const {
    std::size_t i = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[i];
  }
  const Token& take() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  // "line L:C" of a character offset, as ANTLR reports positions (line 1-based, column 0-based).
  std::string where(std::size_t pos) const {
    std::size_t line = 1, col = 0;
    for (std::size_t i = 0; i < pos && i < query_.size(); ++i) {
      if (query_[i] == '\n') {
        ++line;
        col = 0;
      } else {
        ++col;
      }
    }
    return "line " + std::to_string(line) + ":" + std::to_string(col);
  }
  [[noreturn]] void fail_at(const Token& t) {
    if (t.type == Token::Type::kEnd) throw SyntaxError(where(t.pos) + " mismatched input '<EOF>'");
    throw SyntaxError(where(t.pos) + " no viable alternative at input '" + t.text + "'");
  }
  bool is_keyword(const Token& t, std::string_view kw) const {
    return t.type == Token::Type::kIdent && lower(t.text) == kw;
  }
  bool keyword(std::string_view kw) {
    if (is_keyword(peek(), kw)) {
      take();
      return true;
    }
    return false;
  }
  void expect_keyword(std::string_view kw) {
    if (!keyword(kw)) fail_at(peek());
  }
  bool symbol(std::string_view s) {
    if (peek().type == Token::Type::kSymbol && peek().text == s) {
      take();
      return true;
    }
    return false;
  }
  void expect_symbol(std::string_view s) {
    if (!symbol(s)) fail_at(peek());
  }
  std::string identifier() {
    const Token& t = peek();
    if (t.type == Token::Type::kIdent) return lower(take().text);
    if (t.type == Token::Type::kQuotedIdent) return take().text;
    fail_at(t);
  }
  QualifiedName qualified_name() {
    QualifiedName q;
    q.name = identifier();
    if (symbol(".")) {
      q.keyspace = std::move(q.name);
      q.name = identifier();
    }
    return q;
  }
  bool if_not_exists() {
    if (is_keyword(peek(), "if") && is_keyword(peek(1), "not")) {
      take();
      take();
      expect_keyword("exists");
      return true;
    }
    return false;
  }
  bool if_exists() {
    if (is_keyword(peek(), "if") && is_keyword(peek(1), "exists")) {
      take();
      take();
      return true;
    }
    return false;
  }

  Term bind(std::string name) {
    Term t;
    t.kind = Term::Kind::kBind;
    t.bind_index = stmt_->bind_count++;
    t.bind_name = name;
    stmt_->bind_names.push_back(std::move(name));
    return t;
  }

  Term term() {
    const Token& t = peek();
    Term out;
    switch (t.type) {
      case Token::Type::kNumber:
        out.kind = t.text.find_first_of(".eE") == std::string::npos ? Term::Kind::kInteger
                                                                    : Term::Kind::kFloat;
        out.text = take().text;
        return out;
      case Token::Type::kString:
        out.kind = Term::Kind::kString;
        out.text = take().text;
        return out;
      case Token::Type::kHex:
        out.kind = Term::Kind::kHex;
        out.text = take().text;
        return out;
      case Token::Type::kUuid:
        out.kind = Term::Kind::kUuid;
        out.text = take().text;
        return out;
      case Token::Type::kIdent: {
        std::string w = lower(t.text);
        if (w == "true" || w == "false") {
          take();
          out.kind = Term::Kind::kBoolean;
          out.text = w;
          return out;
        }
        if (w == "null") {
          take();
          return out;
        }
        if (w == "nan" || w == "infinity") {
          take();
          out.kind = Term::Kind::kFloat;
          out.text = w;
          return out;
        }
        if (peek(1).type == Token::Type::kSymbol && peek(1).text == "(") {
          take();
          take();
          out.kind = Term::Kind::kFunction;
          out.text = w;
          if (!symbol(")")) {
            do {
              out.elems.push_back(term());
            } while (symbol(","));
            expect_symbol(")");
          }
          return out;
        }
        fail_at(t);
      }
      case Token::Type::kSymbol:
        if (t.text == "?") {
          take();
          return bind("");
        }
        if (t.text == ":") {
          take();
          return bind(identifier());
        }
        if (t.text == "-" && (peek(1).type == Token::Type::kNumber || is_keyword(peek(1), "nan") ||
                              is_keyword(peek(1), "infinity"))) {
          take();
          out = term();
          out.text = "-" + out.text;
          return out;
        }
        if (t.text == "[") {
          take();
          out.kind = Term::Kind::kList;
          if (!symbol("]")) {
            do {
              out.elems.push_back(term());
            } while (symbol(","));
            expect_symbol("]");
          }
          return out;
        }
        if (t.text == "{") {
          take();
          out.kind = Term::Kind::kSet;
          if (symbol("}")) return out;  // {} is an empty set or map; the column type decides
          out.elems.push_back(term());
          if (symbol(":")) {
            out.kind = Term::Kind::kMap;
            out.elems.push_back(term());
            while (symbol(",")) {
              out.elems.push_back(term());
              expect_symbol(":");
              out.elems.push_back(term());
            }
          } else {
            while (symbol(",")) out.elems.push_back(term());
          }
          expect_symbol("}");
          return out;
        }
        fail_at(t);
      default:
        fail_at(t);
    }
  }

  // A CQL type as text: name [< type, ... >].
  std::string type_text() {
    const Token& t = peek();
    std::string out;
    if (t.type == Token::Type::kIdent) {
      out = lower(take().text);
    } else if (t.type == Token::Type::kString) {
      out = "'" + take().text + "'";
      return out;
    } else {
      fail_at(t);
    }
    if (symbol("<")) {
      out += "<";
      out += type_text();
      while (symbol(",")) out += ", " + type_text();
      expect_symbol(">");
      out += ">";
    }
    return out;
  }

  bool is_symbol(const Token& t, std::string_view s) const {
    return t.type == Token::Type::kSymbol && t.text == s;
  }

  // `=`, `!=`, `<`, ... after a column or token(); false if the next token is none of them.
  bool comparison(Relation::Op& op) {
    static constexpr std::pair<std::string_view, Relation::Op> kOps[] = {
        {"=", Relation::Op::kEq},  {"!=", Relation::Op::kNeq}, {"<", Relation::Op::kLt},
        {"<=", Relation::Op::kLe}, {">", Relation::Op::kGt},   {">=", Relation::Op::kGe}};
    for (const auto& [text, o] : kOps) {
      if (symbol(text)) {
        op = o;
        return true;
      }
    }
    return false;
  }

  // IN (t, ...) or IN ? : the terms of an IN relation or condition.
  std::vector<Term> in_values() {
    std::vector<Term> out;
    if (symbol("(")) {
      if (!symbol(")")) {
        do {
          out.push_back(term());
        } while (symbol(","));
        expect_symbol(")");
      }
    } else {
      out.push_back(term());  // IN ? : a list bound as one value
    }
    return out;
  }

  std::vector<Relation> where_clause() {
    std::vector<Relation> rels;
    do {
      Relation r;
      if (is_keyword(peek(), "token") && is_symbol(peek(1), "(")) {
        take();
        take();
        do {
          r.token_of.push_back(identifier());
        } while (symbol(","));
        expect_symbol(")");
        r.column = r.token_of.front();
        if (!comparison(r.op) || r.op == Relation::Op::kNeq) fail_at(peek());
        r.terms.push_back(term());
        rels.push_back(std::move(r));
        continue;
      }
      r.column = identifier();
      if (keyword("in")) {
        r.op = Relation::Op::kIn;
        r.terms = in_values();
      } else if (keyword("contains")) {
        r.op = keyword("key") ? Relation::Op::kContainsKey : Relation::Op::kContains;
        r.terms.push_back(term());
      } else if (keyword("like")) {
        r.op = Relation::Op::kLike;
        r.terms.push_back(term());
      } else if (comparison(r.op)) {
        r.terms.push_back(term());
      } else {
        fail_at(peek());
      }
      rels.push_back(std::move(r));
    } while (keyword("and"));
    return rels;
  }

  // IF EXISTS | IF NOT EXISTS | IF cond AND cond ...; for UPDATE and DELETE.
  void if_clause(bool& if_exists, std::vector<Condition>& conds) {
    if (!is_keyword(peek(), "if")) return;
    take();
    if (keyword("exists")) {
      if_exists = true;
      return;
    }
    do {
      Condition c;
      c.column = identifier();
      if (symbol("[")) {
        c.element = term();
        expect_symbol("]");
      }
      if (keyword("in")) {
        c.op = Relation::Op::kIn;
        c.terms = in_values();
      } else if (comparison(c.op)) {
        c.terms.push_back(term());
      } else {
        fail_at(peek());
      }
      conds.push_back(std::move(c));
    } while (keyword("and"));
  }

  void using_clause(Using& u) {
    do {
      if (keyword("ttl")) {
        u.ttl = term();
      } else if (keyword("timestamp")) {
        u.timestamp = term();
      } else {
        fail_at(peek());
      }
    } while (keyword("and"));
  }

  Body statement() {
    const Token& t = peek();
    if (t.type != Token::Type::kIdent) fail_at(t);
    std::string w = lower(t.text);
    if (w == "select") return select();
    if (w == "insert") return insert();
    if (w == "update") return update();
    if (w == "delete") return delete_();
    if (w == "begin") return batch();
    if (w == "describe" || w == "desc") return describe();
    if (w == "use") {
      take();
      return Use{identifier()};
    }
    if (w == "truncate") {
      take();
      keyword("table") || keyword("columnfamily");
      return Truncate{qualified_name()};
    }
    if (w == "create") {
      take();
      if (keyword("keyspace") || keyword("schema")) return create_keyspace();
      if (keyword("table") || keyword("columnfamily")) return create_table();
      fail_at(peek());
    }
    if (w == "alter") {
      take();
      if (keyword("table") || keyword("columnfamily")) return alter_table();
      fail_at(peek());
    }
    if (w == "drop") {
      take();
      if (keyword("keyspace") || keyword("schema")) {
        DropKeyspace d;
        d.if_exists = if_exists();
        d.name = identifier();
        return d;
      }
      if (keyword("table") || keyword("columnfamily")) {
        DropTable d;
        d.if_exists = if_exists();
        d.table = qualified_name();
        return d;
      }
      fail_at(peek());
    }
    fail_at(t);
  }

  Body describe() {
    take();
    Describe d;
    if (keyword("full")) {
      d.full = true;
      expect_keyword("schema");
      d.what = Describe::What::kSchema;
    } else if (keyword("keyspaces")) {
      d.what = Describe::What::kKeyspaces;
    } else if (keyword("tables") || keyword("columnfamilies")) {
      d.what = Describe::What::kTables;
    } else if (keyword("types")) {
      d.what = Describe::What::kTypes;
    } else if (keyword("functions")) {
      d.what = Describe::What::kFunctions;
    } else if (keyword("aggregates")) {
      d.what = Describe::What::kAggregates;
    } else if (keyword("schema")) {
      d.what = Describe::What::kSchema;
    } else if (keyword("cluster")) {
      d.what = Describe::What::kCluster;
    } else if (is_keyword(peek(), "keyspace") &&
               (peek(1).type == Token::Type::kIdent || peek(1).type == Token::Type::kQuotedIdent ||
                peek(1).type == Token::Type::kEnd || is_symbol(peek(1), ";"))) {
      take();
      d.what = Describe::What::kKeyspace;
      if (peek().type == Token::Type::kIdent || peek().type == Token::Type::kQuotedIdent)
        d.keyspace = identifier();
    } else if ((is_keyword(peek(), "table") || is_keyword(peek(), "columnfamily")) &&
               (peek(1).type == Token::Type::kIdent || peek(1).type == Token::Type::kQuotedIdent)) {
      take();
      d.what = Describe::What::kTable;
      QualifiedName q = qualified_name();
      d.keyspace = q.keyspace;
      d.name = q.name;
    } else {
      d.what = Describe::What::kName;
      QualifiedName q = qualified_name();
      d.keyspace = q.keyspace;
      d.name = q.name;
    }
    if (keyword("with")) expect_keyword("internals");
    return d;
  }

  Body create_keyspace() {
    CreateKeyspace c;
    c.if_not_exists = if_not_exists();
    c.name = identifier();
    expect_keyword("with");
    do {
      std::string opt = identifier();
      expect_symbol("=");
      Term v = term();
      if (opt == "replication") {
        if (v.kind != Term::Kind::kMap) throw SyntaxError("replication must be a map");
        for (std::size_t i = 0; i + 1 < v.elems.size(); i += 2)
          c.replication[v.elems[i].text] = v.elems[i + 1].text;
      } else if (opt == "durable_writes") {
        c.durable_writes = lower(v.text) != "false";
      }
    } while (keyword("and"));
    return c;
  }

  Body create_table() {
    CreateTable c;
    c.if_not_exists = if_not_exists();
    c.table = qualified_name();
    expect_symbol("(");
    do {
      if (is_keyword(peek(), "primary") && is_keyword(peek(1), "key")) {
        take();
        take();
        expect_symbol("(");
        if (symbol("(")) {
          do {
            c.partition_key.push_back(identifier());
          } while (symbol(","));
          expect_symbol(")");
        } else {
          c.partition_key.push_back(identifier());
        }
        while (symbol(",")) c.clustering_key.push_back(identifier());
        expect_symbol(")");
        continue;
      }
      ColumnDef def;
      def.name = identifier();
      def.type = type_text();
      for (;;) {
        if (keyword("static")) {
          def.is_static = true;
        } else if (is_keyword(peek(), "primary")) {
          take();
          expect_keyword("key");
          c.partition_key.push_back(def.name);
        } else {
          break;
        }
      }
      c.columns.push_back(std::move(def));
    } while (symbol(","));
    expect_symbol(")");
    if (keyword("with")) {
      do {
        if (keyword("clustering")) {
          expect_keyword("order");
          expect_keyword("by");
          expect_symbol("(");
          do {
            std::string col = identifier();
            std::string dir = "asc";
            if (keyword("desc")) {
              dir = "desc";
            } else {
              keyword("asc");
            }
            c.clustering_order[col] = dir;
          } while (symbol(","));
          expect_symbol(")");
        } else if (keyword("compact")) {
          expect_keyword("storage");
        } else {
          std::string name = identifier();
          expect_symbol("=");
          c.options[name] = term();
        }
      } while (keyword("and"));
    }
    return c;
  }

  Body alter_table() {
    AlterTable a;
    a.table = qualified_name();
    if (keyword("add")) {
      bool parens = symbol("(");
      do {
        ColumnDef def;
        def.name = identifier();
        def.type = type_text();
        def.is_static = keyword("static");
        a.add.push_back(std::move(def));
      } while (symbol(","));
      if (parens) expect_symbol(")");
    } else if (keyword("drop")) {
      bool parens = symbol("(");
      do {
        a.drop.push_back(identifier());
      } while (symbol(","));
      if (parens) expect_symbol(")");
    } else if (keyword("with")) {
      do {
        std::string name = identifier();
        expect_symbol("=");
        a.options[name] = term();
      } while (keyword("and"));
    } else {
      fail_at(peek());  // ALTER ... TYPE / RENAME: not supported here
    }
    return a;
  }

  Body insert() {
    take();
    expect_keyword("into");
    Insert ins;
    ins.table = qualified_name();
    if (keyword("json")) throw SyntaxError("INSERT JSON is not supported by zdm-testcluster");
    expect_symbol("(");
    do {
      ins.columns.push_back(identifier());
    } while (symbol(","));
    expect_symbol(")");
    expect_keyword("values");
    expect_symbol("(");
    do {
      ins.values.push_back(term());
    } while (symbol(","));
    expect_symbol(")");
    for (;;) {
      if (if_not_exists()) {
        ins.if_not_exists = true;
      } else if (keyword("using")) {
        using_clause(ins.using_);
      } else {
        break;
      }
    }
    if (ins.columns.size() != ins.values.size()) throw SyntaxError("Unmatched column names/values");
    return ins;
  }

  // One SET item: c = t | c = c + t | c = t + c | c = c - t | c += t | c -= t | c[k] = t.
  Assignment assignment() {
    Assignment a;
    a.column = identifier();
    if (symbol("[")) {
      a.kind = Assignment::Kind::kSetElement;
      a.key = term();
      expect_symbol("]");
      expect_symbol("=");
      a.value = term();
      return a;
    }
    if (symbol("+")) {
      expect_symbol("=");
      a.kind = Assignment::Kind::kAdd;
      a.value = term();
      return a;
    }
    if (is_symbol(peek(), "-") && is_symbol(peek(1), "=")) {
      take();
      take();
      a.kind = Assignment::Kind::kSubtract;
      a.value = term();
      return a;
    }
    expect_symbol("=");
    const Token& first = peek();
    if ((first.type == Token::Type::kIdent || first.type == Token::Type::kQuotedIdent) &&
        (is_symbol(peek(1), "+") || is_symbol(peek(1), "-")) &&
        (first.type == Token::Type::kQuotedIdent ? first.text : lower(first.text)) == a.column) {
      take();
      a.kind = symbol("+") ? Assignment::Kind::kAdd : (take(), Assignment::Kind::kSubtract);
      a.value = term();
      return a;
    }
    a.value = term();
    if (symbol("+")) {
      std::string col = identifier();
      if (col != a.column) fail_at(peek());
      a.kind = Assignment::Kind::kPrepend;
    }
    return a;
  }

  Body update() {
    take();
    Update u;
    u.table = qualified_name();
    if (keyword("using")) using_clause(u.using_);
    expect_keyword("set");
    do {
      u.assignments.push_back(assignment());
    } while (symbol(","));
    expect_keyword("where");
    u.where = where_clause();
    if_clause(u.if_exists, u.conditions);
    return u;
  }

  Body delete_() {
    take();
    Delete d;
    if (!is_keyword(peek(), "from")) {
      do {
        DeleteTarget target;
        target.column = identifier();
        if (symbol("[")) {
          target.element = term();
          expect_symbol("]");
        }
        d.columns.push_back(std::move(target));
      } while (symbol(","));
    }
    expect_keyword("from");
    d.table = qualified_name();
    if (keyword("using")) using_clause(d.using_);
    expect_keyword("where");
    d.where = where_clause();
    if_clause(d.if_exists, d.conditions);
    return d;
  }

  // A selector: column | count(*) | count(x) | f(selector, ...) | literal (as a function argument).
  Selector selector(bool top) {
    Selector sel;
    const Token& t = peek();
    if ((t.type == Token::Type::kIdent) && is_symbol(peek(1), "(")) {
      std::string name = lower(take().text);
      take();
      if (name == "count") {
        sel.kind = Selector::Kind::kCount;
        sel.name = "count";
        if (symbol("*")) {
          expect_symbol(")");
          return sel;
        }
        Selector arg = selector(false);
        expect_symbol(")");
        if (arg.kind == Selector::Kind::kColumn) sel.args.push_back(std::move(arg));
        return sel;
      }
      sel.kind = Selector::Kind::kFunction;
      sel.name = name;
      if (!symbol(")")) {
        do {
          sel.args.push_back(selector(false));
        } while (symbol(","));
        expect_symbol(")");
      }
      return sel;
    }
    if (t.type == Token::Type::kIdent || t.type == Token::Type::kQuotedIdent) {
      std::string w = lower(t.text);
      bool literal_word =
          t.type == Token::Type::kIdent &&
          (w == "true" || w == "false" || w == "null" || w == "nan" || w == "infinity");
      if (!literal_word) {
        sel.kind = Selector::Kind::kColumn;
        sel.name = identifier();
        return sel;
      }
    }
    if (top && is_symbol(t, "?")) fail_at(t);
    sel.kind = Selector::Kind::kTerm;
    sel.term = term();
    return sel;
  }

  Body select() {
    take();
    Select s;
    if (keyword("json")) s.json = true;
    if (is_keyword(peek(), "distinct") && !is_keyword(peek(1), "from") &&
        !is_symbol(peek(1), ",")) {
      take();
      s.distinct = true;
    }
    if (symbol("*")) {
      s.star = true;
    } else {
      do {
        Selector sel = selector(true);
        if (keyword("as")) sel.alias = identifier();
        s.selectors.push_back(std::move(sel));
      } while (symbol(","));
    }
    expect_keyword("from");
    s.table = qualified_name();
    if (keyword("where")) s.where = where_clause();
    if (keyword("group")) throw SyntaxError("GROUP BY is not supported by zdm-testcluster");
    if (keyword("order")) {
      expect_keyword("by");
      do {
        std::string col = identifier();
        bool desc = false;
        if (keyword("desc")) {
          desc = true;
        } else {
          keyword("asc");
        }
        s.order_by.emplace_back(std::move(col), desc);
      } while (symbol(","));
    }
    if (is_keyword(peek(), "per")) {
      take();
      expect_keyword("partition");
      expect_keyword("limit");
      s.per_partition_limit = term();
    }
    if (keyword("limit")) s.limit = term();
    if (keyword("allow")) {
      expect_keyword("filtering");
      s.allow_filtering = true;
    }
    return s;
  }

  Body batch() {
    take();
    Batch b;
    if (keyword("unlogged")) {
      b.type = Batch::Type::kUnlogged;
    } else if (keyword("counter")) {
      b.type = Batch::Type::kCounter;
    } else {
      keyword("logged");
    }
    expect_keyword("batch");
    if (keyword("using")) using_clause(b.using_);
    while (!is_keyword(peek(), "apply")) {
      const Token& t = peek();
      std::string w = lower(t.text);
      Statement child;
      if (t.type == Token::Type::kIdent && w == "insert") {
        child.body = insert();
      } else if (t.type == Token::Type::kIdent && w == "update") {
        child.body = update();
      } else if (t.type == Token::Type::kIdent && w == "delete") {
        child.body = delete_();
      } else {
        fail_at(t);
      }
      b.children.push_back(std::move(child));
      while (symbol(";")) {
      }
    }
    expect_keyword("apply");
    expect_keyword("batch");
    return b;
  }
  std::string_view query_;
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  Statement* stmt_ = nullptr;
};

}  // namespace

const char* op_text(Relation::Op op) {
  switch (op) {
    case Relation::Op::kEq:
      return "=";
    case Relation::Op::kNeq:
      return "!=";
    case Relation::Op::kLt:
      return "<";
    case Relation::Op::kLe:
      return "<=";
    case Relation::Op::kGt:
      return ">";
    case Relation::Op::kGe:
      return ">=";
    case Relation::Op::kIn:
      return "IN";
    case Relation::Op::kContains:
      return "CONTAINS";
    case Relation::Op::kContainsKey:
      return "CONTAINS KEY";
    case Relation::Op::kLike:
      return "LIKE";
  }
  return "?";
}

Statement parse_statement(std::string_view query) {
  return Parser(query).parse();
}

}  // namespace zdm::testcluster
