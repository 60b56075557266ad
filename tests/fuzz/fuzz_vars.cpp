// Harness: the vars loader (deployer/vars.h): YAML vars files as load_vars_file reads them
// (parse_yaml, then "a vars file must be a mapping"), and -e arguments (parse_extra_vars).
//
// Input: YAML text, or an -e argument ("k=v k2='v 2'", "{...}").
// Properties: each throws nothing but VarsError; a vars mapping in valid UTF-8 survives JSON
// text and back.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "vars.h"

using namespace zdm::deploy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = zdm::fuzz::text_of(data, size);
  try {
    const Json j = parse_yaml(text, "fuzz.yml");
    if (j.is_object()) {
      std::string dumped;
      try {
        dumped = j.dump();
      } catch (const Json::type_error&) {  // not UTF-8: YAML requires it, yaml-cpp does not
        dumped = "{}";
      }
      if (dumped != "{}") FUZZ_CHECK(Json::parse(dumped) == j);
      Json base = Json::object();
      overlay(base, j);
      FUZZ_CHECK(base == j);
    }
  } catch (const VarsError&) {
  }
  if (text.empty() || text[0] != '@') {  // "@file" reads a file: not from fuzz input
    try {
      const Json j = parse_extra_vars(text);
      FUZZ_CHECK(j.is_object());
    } catch (const VarsError&) {
    }
  }
  return 0;
}
