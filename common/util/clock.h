// Wall-clock helpers.
#pragma once

#include <string>

namespace zdm::util {

/// The current time in UTC as ISO 8601 with seconds, e.g. "2026-12-07T13:18:58Z" (the form of
/// audit lines and lock files; sorts as text).
std::string utc_now();

}  // namespace zdm::util
