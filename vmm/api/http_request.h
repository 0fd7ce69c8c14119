// A strict, bounded HTTP/1.1 request parser for the control API (RFC 9112):
// a request line, header fields, and a body framed by Content-Length only.
// It never allocates more than the bytes it is given, which the server
// caps at kMaxRequestBytes. Anything it does not accept becomes an error
// status with a message naming what is wrong, for a 4xx/5xx reply.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minivmm::api {

// Header section and body together: the API's bodies are small JSON
// objects; a client that sends more is refused, not buffered.
inline constexpr size_t kMaxRequestBytes = size_t{64} * 1024;
inline constexpr size_t kMaxHeaderFields = 64;

struct HttpRequest {
  std::string method;  // "GET", "PUT", "PATCH", ...
  std::string target;  // origin-form: "/drives/0"
  // Field names lower-cased (they are case-insensitive, RFC 9110 5.1);
  // values without leading and trailing whitespace.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The value of field `name` (lower case), if present.
  std::optional<std::string_view> header(std::string_view name) const;
};

struct HttpError {
  int status = 400;
  std::string message;  // what is wrong, for the reply's fault_message
};

struct ParseResult {
  enum class Status { kIncomplete, kComplete, kError } status = Status::kIncomplete;
  HttpRequest request;  // kComplete
  HttpError error;      // kError
};

// Parses the first request in `bytes` (everything received so far on a
// connection). kIncomplete: more bytes may complete it; the caller refuses
// a connection whose buffer reaches kMaxRequestBytes before that (this
// function then says so itself: 431 or 413).
ParseResult parse_http_request(std::string_view bytes);

}  // namespace minivmm::api
