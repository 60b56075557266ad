// String helpers every program uses.
#pragma once

#include <string>
#include <string_view>

namespace zdm::util {

/// `s` with ASCII letters lower-cased (the C locale's tolower; other bytes unchanged).
std::string lower(std::string_view s);

/// `s` with ASCII letters upper-cased (the C locale's toupper; other bytes unchanged).
std::string upper(std::string_view s);

/// `s` without leading and trailing spaces, tabs, carriage returns and newlines.
std::string trim(std::string_view s);

}  // namespace zdm::util
