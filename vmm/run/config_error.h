// A configured value that is wrong: a bad key or value in the TOML config or
// a flag, or a value this host cannot run (guest RAM beyond its limits, more
// disks than the kernel command line holds). Exit code 65 (exit_codes.h).
// Here rather than in config/ so that the checks made at start (kvm/'s RAM
// limits) can throw it without including the config layer above them.
#pragma once

#include "common/error.h"

namespace minivmm {

class ConfigError : public Error {
 public:
  using Error::Error;
};

}  // namespace minivmm
