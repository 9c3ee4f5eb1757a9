// The message of the cca::Error a test body throws, for checking what an error says.
#pragma once

#include <string>

#include "util/error.h"

namespace cca::testing {

// The message of the cca::Error that `body` throws, or "(no error)".
template <class Body>
std::string error_of(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace cca::testing
