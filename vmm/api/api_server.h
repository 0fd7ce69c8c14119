// The control API's server: one thread with an epoll set over the listening
// socket and its connections, all non-blocking, so no client can hold it:
// at most kMaxConnections at once (up to as many more are answered 503,
// beyond that closed), each
// request at most kMaxRequestBytes (http_request.h), each connection closed
// kConnectionTimeout after it was accepted whether or not it sent a whole
// request or read its answer. One request per connection; the response
// ends it (shutdown for writing, then input discarded until the client
// closes, at most 2 s). Handlers run on this thread (router.h), never on a vCPU or the
// I/O loop. The thread runs under its own seccomp filter (ThreadKind::kApi)
// and removes the socket file when it ends.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "common/unique_fd.h"
#include "vmm/api/vm_control.h"

namespace minivmm::api {

inline constexpr size_t kMaxConnections = 16;
inline constexpr std::chrono::seconds kConnectionTimeout{10};

class ApiServer {
 public:
  // `listener`: from listen_api_socket(`path`). `sandbox`: load the
  // thread's seccomp filter. Starts the thread.
  ApiServer(UniqueFd listener, std::string path, VmControl& vm, bool sandbox);
  ~ApiServer();  // stops and joins the thread (the socket file goes with it)
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

 private:
  void serve(bool sandbox);

  UniqueFd listener_;
  std::string path_;
  VmControl& vm_;
  UniqueFd epoll_;
  UniqueFd quit_;        // eventfd: the destructor's wake-up
  std::jthread thread_;  // last: starts after the fds exist
};

}  // namespace minivmm::api
