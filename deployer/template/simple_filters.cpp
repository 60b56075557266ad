// The filters of a value alone: Jinja2's builtin filters
// (https://jinja.palletsprojects.com/en/stable/templates/#list-of-builtin-filters) and Ansible's
// (https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_filters.html).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "ssh/transport.h"
#include "template/common.h"
#include "template/filters.h"

namespace zdm::deploy::tmpl {
namespace {

Json lower(Evaluator&, const Json& in) {
  std::string s = to_text(in);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Json upper(Evaluator&, const Json& in) {
  std::string s = to_text(in);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Json trim(Evaluator&, const Json& in) {
  return trim_copy(to_text(in));
}

Json string_of(Evaluator&, const Json& in) {
  return to_text(in);
}

// Ansible's quote: shlex.quote.
Json quote(Evaluator&, const Json& in) {
  return shell_quote(to_text(in));
}

// Ansible's int: 0 for what does not convert (int(default) is in filters.cpp).
Json to_int(Evaluator& ev, const Json& in) {
  try {
    return ev.as_int(in);
  } catch (const TemplateError&) {
    return 0;
  }
}

Json to_float(Evaluator&, const Json& in) {
  if (in.is_number()) return in.get<double>();
  try {
    return std::stod(to_text(in));
  } catch (const std::exception&) {
    return 0.0;
  }
}

// Ansible's bool: yes/true/1/on/y/t (any case, trimmed) are true.
Json to_bool(Evaluator& ev, const Json& in) {
  if (in.is_boolean()) return in;
  if (in.is_number()) return in.get<double>() != 0;
  std::string s = trim_copy(lower(ev, in).get<std::string>());
  return s == "yes" || s == "true" || s == "1" || s == "on" || s == "y" || s == "t";
}

Json length(Evaluator& ev, const Json& in) {
  if (in.is_string()) return static_cast<long long>(in.get_ref<const std::string&>().size());
  if (in.is_array() || in.is_object()) return static_cast<long long>(in.size());
  ev.error(fmt::format("{} has no length", show(in)));
}

Json dump(Evaluator& ev, const Json& in, const char* name, int indent) {
  try {
    return in.dump(indent);
  } catch (const Json::type_error& ex) {
    ev.error(fmt::format("{}: {}", name, ex.what()));
  }
}
Json to_json(Evaluator& ev, const Json& in) {
  return dump(ev, in, "to_json", -1);
}
Json to_nice_json(Evaluator& ev, const Json& in) {
  return dump(ev, in, "to_nice_json", 4);
}

Json from_json(Evaluator& ev, const Json& in) {
  try {
    return Json::parse(to_text(in));
  } catch (const Json::exception& ex) {
    ev.error(fmt::format("from_json: {}", ex.what()));
  }
}

// first/last of a list, or the first/last character of the text.
Json end_of(Evaluator& ev, const Json& in, bool first) {
  const char* name = first ? "first" : "last";
  if (in.is_array()) {
    if (in.empty()) ev.error(fmt::format("{} of an empty list", name));
    return first ? in.front() : in.back();
  }
  std::string s = to_text(in);
  if (s.empty()) ev.error(fmt::format("{} of an empty string", name));
  return std::string(1, first ? s.front() : s.back());
}
Json first(Evaluator& ev, const Json& in) {
  return end_of(ev, in, true);
}
Json last(Evaluator& ev, const Json& in) {
  return end_of(ev, in, false);
}

// A list as is, a mapping's keys, a text's characters.
Json list(Evaluator&, const Json& in) {
  if (in.is_array()) return in;
  if (in.is_object()) return keys_of(in);
  Json out = Json::array();
  for (char c : to_text(in)) out.push_back(std::string(1, c));
  return out;
}

Json unique(Evaluator&, const Json& in) {
  Json out = Json::array();
  for (auto& x : in)
    if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
  return out;
}

Json sort(Evaluator&, const Json& in) {
  Json out = in;
  if (out.is_array()) std::sort(out.begin(), out.end());
  return out;
}

Json reverse(Evaluator&, const Json& in) {
  if (in.is_string()) {
    std::string s = in.get<std::string>();
    return std::string(s.rbegin(), s.rend());
  }
  Json out = in;
  if (out.is_array()) std::reverse(out.begin(), out.end());
  return out;
}

Json basename(Evaluator&, const Json& in) {
  std::string s = to_text(in);
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

Json dirname(Evaluator&, const Json& in) {
  std::string s = to_text(in);
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? std::string() : s.substr(0, slash);
}

Json abs_value(Evaluator& ev, const Json& in) {
  if (in.is_number_integer()) {
    if (in.get<long long>() == std::numeric_limits<long long>::min())
      ev.error(fmt::format("integer overflow in abs({})", show(in)));
    return std::llabs(in.get<long long>());
  }
  if (in.is_number()) return std::fabs(in.get<double>());
  // A non-number has always been reported this way.
  ev.error("unknown filter 'abs'");
}

Json extreme(Evaluator& ev, const Json& in, bool min) {
  if (!in.is_array() || in.empty())
    ev.error(fmt::format("{} needs a non-empty list", min ? "min" : "max"));
  return min ? *std::min_element(in.begin(), in.end()) : *std::max_element(in.begin(), in.end());
}
Json min_of(Evaluator& ev, const Json& in) {
  return extreme(ev, in, true);
}
Json max_of(Evaluator& ev, const Json& in) {
  return extreme(ev, in, false);
}

}  // namespace

// Sorted by name. The full-call filters are in filters.cpp.
const std::map<std::string, SimpleFilter, std::less<>>& simple_filter_table() {
  static const std::map<std::string, SimpleFilter, std::less<>> table = {
      {"abs", abs_value},
      {"basename", basename},
      {"bool", to_bool},
      {"count", length},  // Jinja2's alias of length
      {"dirname", dirname},
      {"first", first},
      {"float", to_float},
      {"from_json", from_json},
      {"int", to_int},
      {"last", last},
      {"length", length},
      {"list", list},
      {"lower", lower},
      {"max", max_of},
      {"min", min_of},
      {"quote", quote},
      {"reverse", reverse},
      {"sort", sort},
      {"string", string_of},
      {"to_json", to_json},
      {"to_nice_json", to_nice_json},
      {"trim", trim},
      {"unique", unique},
      {"upper", upper},
  };
  return table;
}

Json apply_simple_filter(Evaluator& ev, std::string_view name, const Json& in) {
  const auto& table = simple_filter_table();
  auto it = table.find(name);
  if (it == table.end()) ev.error(fmt::format("unknown filter '{}'", name));
  return it->second(ev, in);
}

}  // namespace zdm::deploy::tmpl
