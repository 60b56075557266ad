#include "template/blocks.h"

#include <algorithm>

#include <fmt/format.h>

#include "template/common.h"

namespace zdm::deploy::tmpl {
namespace {

// Appends text segments, applying the strip ("-%}") or trim_blocks of the tag before them.
struct TextSink {
  std::vector<Segment>& out;
  bool strip_next = false;
  bool eat_newline = false;

  void add(std::string text, int at) {
    if (strip_next) {
      size_t b = text.find_first_not_of(" \t\r\n");
      text = b == std::string::npos ? "" : text.substr(b);
      strip_next = false;
    } else if (eat_newline && !text.empty()) {
      if (text[0] == '\n')
        text.erase(0, 1);
      else if (text.size() > 1 && text[0] == '\r' && text[1] == '\n')
        text.erase(0, 2);
    }
    eat_newline = false;
    if (!text.empty()) out.push_back({Segment::Text, std::move(text), at});
  }
};

// The position of the next "{{", "{%" or "{#" at or after `pos`, or npos.
size_t next_tag(std::string_view in, size_t pos) {
  size_t open = in.find('{', pos);
  while (open != std::string_view::npos && open + 1 < in.size() && in[open + 1] != '{' &&
         in[open + 1] != '%' && in[open + 1] != '#')
    open = in.find('{', open + 1);
  if (open == std::string_view::npos || open + 1 >= in.size()) return std::string_view::npos;
  return open;
}

}  // namespace

std::vector<Segment> split_segments(std::string_view in, const Source& src, bool trim_blocks) {
  std::vector<Segment> out;
  TextSink sink{out};
  size_t pos = 0;
  int line = src.line;
  while (pos < in.size()) {
    size_t open = next_tag(in, pos);
    if (open == std::string_view::npos) {
      sink.add(std::string(in.substr(pos)), line);
      break;
    }
    int text_line = line;
    std::string text(in.substr(pos, open - pos));
    line += static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    char kind = in[open + 1];
    const char* close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t end = in.find(close, open + 2);
    if (end == std::string_view::npos)
      throw TemplateError(fmt::format("{}:{}: unclosed '{{{}' tag", src.name, line, kind));
    std::string inner(in.substr(open + 2, end - open - 2));
    bool lstrip = !inner.empty() && inner.front() == '-';
    // "{{-}}": the one '-' strips on the left only (popping it twice was UB).
    bool rstrip = inner.size() > (lstrip ? 1u : 0u) && inner.back() == '-';
    if (lstrip) {
      inner.erase(0, 1);
      size_t e = text.find_last_not_of(" \t\r\n");
      text = e == std::string::npos ? "" : text.substr(0, e + 1);
    }
    if (rstrip) inner.pop_back();
    sink.add(std::move(text), text_line);
    int tag_line = line;
    line += static_cast<int>(std::count(inner.begin(), inner.end(), '\n'));
    if (kind == '{') out.push_back({Segment::Var, inner, tag_line});
    if (kind == '%') out.push_back({Segment::Block, inner, tag_line});
    sink.strip_next = rstrip;
    sink.eat_newline = trim_blocks && kind != '{';
    pos = end + 2;
  }
  return out;
}

namespace {

class TemplateParser {
 public:
  TemplateParser(std::vector<Segment> segs, const Source& src)
      : segs_(std::move(segs)), src_(src) {}

  std::vector<Node> parse() {
    std::string end;
    return body({}, end);
  }

 private:
  [[noreturn]] void error(int line, const std::string& msg) const {
    throw TemplateError(fmt::format("{}:{}: {}", src_.name, line, msg));
  }

  // "keyword rest" of a block tag.
  static std::pair<std::string, std::string> split_stmt(const std::string& stmt) {
    std::string s = trim_copy(stmt);
    size_t sp = s.find_first_of(" \t\r\n");
    if (sp == std::string::npos) return {s, ""};
    return {s.substr(0, sp), trim_copy(s.substr(sp))};
  }

  // Parses nodes until a block statement whose keyword is in `stops`; that keyword's
  // segment index is left in pos_ and its keyword in `end` ("" at the end of the segments).
  std::vector<Node> body(const std::vector<std::string>& stops, std::string& end) {
    NestingGuard guard(depth_);
    if (depth_ > kMaxNesting)
      error(segs_[pos_ - 1].line, fmt::format("blocks nested deeper than {} levels", kMaxNesting));
    std::vector<Node> nodes;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_];
      if (seg.kind == Segment::Text) {
        nodes.push_back(Node{Node::Text, seg.line, seg.text, nullptr, {}, {}, {}, {}});
        ++pos_;
        continue;
      }
      if (seg.kind == Segment::Var) {
        Node n;
        n.kind = Node::Output;
        n.line = seg.line;
        n.expr = parse_expression(trim_copy(seg.text), src_, seg.line);
        nodes.push_back(std::move(n));
        ++pos_;
        continue;
      }
      auto [kw, rest] = split_stmt(seg.text);
      if (std::find(stops.begin(), stops.end(), kw) != stops.end()) {
        end = kw;
        return nodes;
      }
      int line = seg.line;
      ++pos_;
      if (kw == "if")
        nodes.push_back(if_block(rest, line));
      else if (kw == "for")
        nodes.push_back(for_block(rest, line));
      else if (kw == "set")
        nodes.push_back(set_statement(rest, line));
      else
        error(line, fmt::format("unknown or unexpected tag '{}'", kw));
    }
    end.clear();
    return nodes;
  }

  Node if_block(const std::string& rest, int line) {
    Node n;
    n.kind = Node::If;
    n.line = line;
    ExprPtr cond = parse_expression(rest, src_, line);
    while (true) {
      std::string stop;
      auto b = body({"elif", "else", "endif"}, stop);
      if (stop.empty()) error(line, "'if' without 'endif'");
      n.branches.emplace_back(cond, std::move(b));
      const Segment& s = segs_[pos_++];
      if (stop == "endif") break;
      if (stop == "elif") {
        cond = parse_expression(split_stmt(s.text).second, src_, s.line);
        continue;
      }
      std::string stop2;
      n.else_body = body({"endif"}, stop2);
      if (stop2.empty()) error(line, "'if' without 'endif'");
      ++pos_;
      break;
    }
    return n;
  }

  Node for_block(const std::string& rest, int line) {
    Node n;
    n.kind = Node::For;
    n.line = line;
    auto [vars, e] = parse_for_header(rest, src_, line);
    n.vars = vars;
    n.expr = e;
    std::string stop;
    n.body = body({"endfor", "else"}, stop);
    if (stop.empty()) error(line, "'for' without 'endfor'");
    ++pos_;
    if (stop == "else") {
      std::string stop2;
      n.else_body = body({"endfor"}, stop2);
      if (stop2.empty()) error(line, "'for' without 'endfor'");
      ++pos_;
    }
    return n;
  }

  Node set_statement(const std::string& rest, int line) {
    Node n;
    n.kind = Node::Set;
    n.line = line;
    auto [name, e] = parse_set_header(rest, src_, line);
    n.vars = {name};
    n.expr = e;
    return n;
  }

  std::vector<Segment> segs_;
  const Source& src_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

std::vector<Node> parse_template(std::vector<Segment> segments, const Source& src) {
  return TemplateParser(std::move(segments), src).parse();
}

}  // namespace zdm::deploy::tmpl
