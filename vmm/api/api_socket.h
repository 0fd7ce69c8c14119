// The control API's listening Unix socket: created mode 0600 (only the user
// who runs minivmm may drive the VM). A socket already at the path is
// replaced only when nothing listens on it any more (a run that died left
// it); a live one, or any other kind of file, is refused.
#pragma once

#include <string>

#include "common/unique_fd.h"

namespace minivmm::api {

// Throws ConfigError naming the path and why (exit code 65).
UniqueFd listen_api_socket(const std::string& path);

}  // namespace minivmm::api
