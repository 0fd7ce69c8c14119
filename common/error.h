// Errors carry context: what failed, on which object, and why (errno text).
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace minivmm {

// A failure that should end the run with a clear message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "what: strerror(err)", for failed system calls.
inline Error sys_error(const std::string& what, int err = errno) {
  return Error(what + ": " + std::strerror(err));
}

}  // namespace minivmm
