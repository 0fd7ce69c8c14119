// The control API's routes (docs/api.md): one request in, one response
// out, with Firecracker's resource names and error shape where it has the
// same concept ({"fault_message": "..."} on every 4xx/5xx).
#pragma once

#include <string>

#include "vmm/api/http_request.h"
#include "vmm/api/vm_control.h"

namespace minivmm::api {

inline constexpr const char* kVmmVersion = "0.1.0";

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty with an empty body
  std::string body;
  std::string allow;  // 405: the methods the resource takes
};

HttpResponse handle_request(const HttpRequest& request, VmControl& vm);

// A 4xx/5xx response whose JSON body names what is wrong.
HttpResponse fault(int status, const std::string& message);

// The response on the wire; every response closes its connection.
std::string serialize(const HttpResponse& response);

}  // namespace minivmm::api
