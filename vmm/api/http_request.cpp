#include "vmm/api/http_request.h"

#include <algorithm>
#include <charconv>

namespace minivmm::api {
namespace {

using Status = ParseResult::Status;

ParseResult fail(int status, std::string message) {
  ParseResult r;
  r.status = Status::kError;
  r.error = {status, std::move(message)};
  return r;
}

// tchar (RFC 9110 5.6.2): the characters of a method or a field name.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Visible ASCII, as an origin-form target allows (RFC 3986 characters).
bool is_target(std::string_view s) {
  if (s.empty() || s[0] != '/') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// A field value: visible characters, spaces and tabs (RFC 9110 5.5); no
// control characters, so no bare CR or LF can hide a second field.
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "Name: value" lines, each ending in CRLF (no obsolete line folding).
std::optional<HttpError> parse_fields(std::string_view fields, HttpRequest& req) {
  while (!fields.empty()) {
    const size_t eol = fields.find("\r\n");
    const std::string_view line = fields.substr(0, eol);
    fields.remove_prefix(eol == std::string_view::npos ? fields.size() : eol + 2);
    if (line.empty()) return HttpError{400, "empty header line"};
    if (line.front() == ' ' || line.front() == '\t') {
      return HttpError{400,
                       "header line folding (a line starting with whitespace) is not "
                       "accepted"};
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return HttpError{400, "header line without ':'"};
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (!is_token(name)) return HttpError{400, "malformed header field name"};
    if (!is_field_value(value)) {
      return HttpError{400, "header field '" + std::string(name) +
                                "' has a control character in its value"};
    }
    if (req.headers.size() == kMaxHeaderFields) {
      return HttpError{431, "more than " + std::to_string(kMaxHeaderFields) + " header fields"};
    }
    req.headers.emplace_back(lower(name), std::string(value));
  }
  return std::nullopt;
}

// "METHOD SP target SP HTTP/1.x"
std::optional<HttpError> parse_request_line(std::string_view line, HttpRequest& req) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return HttpError{400, "malformed request line: expected 'METHOD /path HTTP/1.1'"};
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return HttpError{400, "malformed request method"};
  if (!is_target(target)) {
    return HttpError{400, "malformed request target: expected a path starting with '/'"};
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." ||
      (version[7] != '0' && version[7] != '1')) {
    return HttpError{505, "unsupported HTTP version; use HTTP/1.1"};
  }
  req.method = method;
  req.target = target;
  return std::nullopt;
}

// The body's length from Content-Length (RFC 9112 6.3); a request that
// frames its body any other way is refused.
std::optional<HttpError> body_length(const HttpRequest& req, size_t& length) {
  if (req.header("transfer-encoding")) {
    return HttpError{501, "Transfer-Encoding is not supported; send the body with Content-Length"};
  }
  std::optional<std::string_view> value;
  for (const auto& [name, v] : req.headers) {
    if (name != "content-length") continue;
    if (value && *value != v) return HttpError{400, "conflicting Content-Length fields"};
    value = v;
  }
  length = 0;
  if (!value) {
    if (req.method == "PUT" || req.method == "PATCH" || req.method == "POST") {
      return HttpError{411, req.method + " needs a Content-Length"};
    }
    return std::nullopt;
  }
  const char* end = value->data() + value->size();
  const auto [p, ec] = std::from_chars(value->data(), end, length);
  if (value->empty() || ec != std::errc() || p != end) {
    return HttpError{400, "Content-Length '" + std::string(*value) + "' is not a number"};
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

ParseResult parse_http_request(std::string_view bytes) {
  const size_t head_end = bytes.substr(0, kMaxRequestBytes).find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    // A bare LF cannot end a line here: say so rather than wait for more.
    for (size_t lf = bytes.find('\n'); lf != std::string_view::npos;
         lf = bytes.find('\n', lf + 1)) {
      if (lf == 0 || bytes[lf - 1] != '\r') return fail(400, "lines must end in CRLF");
    }
    if (bytes.size() >= kMaxRequestBytes) {
      return fail(431,
                  "request header section exceeds " + std::to_string(kMaxRequestBytes) + " bytes");
    }
    return {};
  }
  std::string_view head = bytes.substr(0, head_end);
  if (head.find('\n') != std::string_view::npos) {
    // Every LF of the head must be part of a CRLF.
    for (size_t i = 0; i < head.size(); ++i) {
      if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) {
        return fail(400, "lines must end in CRLF");
      }
      if (head[i] == '\r' && (i + 1 == head.size() || head[i + 1] != '\n')) {
        return fail(400, "a bare CR in the request head");
      }
    }
  }
  ParseResult r;
  const size_t line_end = head.find("\r\n");
  if (auto e = parse_request_line(head.substr(0, line_end), r.request)) {
    return fail(e->status, e->message);
  }
  if (line_end != std::string_view::npos) {
    if (auto e = parse_fields(head.substr(line_end + 2), r.request)) {
      return fail(e->status, e->message);
    }
  }
  size_t length = 0;
  if (auto e = body_length(r.request, length)) return fail(e->status, e->message);
  const size_t body_start = head_end + 4;
  if (length > kMaxRequestBytes - std::min(body_start, kMaxRequestBytes)) {
    return fail(413, "request body of " + std::to_string(length) + " bytes exceeds the " +
                         std::to_string(kMaxRequestBytes) + "-byte request limit");
  }
  if (bytes.size() - body_start < length) return {};
  r.request.body = bytes.substr(body_start, length);
  r.status = Status::kComplete;
  return r;
}

}  // namespace minivmm::api
