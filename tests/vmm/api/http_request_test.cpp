#include "vmm/api/http_request.h"

#include <gtest/gtest.h>

#include <string>

namespace minivmm::api {
namespace {

using Status = ParseResult::Status;

// The status of a refused request, and its message.
HttpError error_of(const std::string& bytes) {
  const ParseResult r = parse_http_request(bytes);
  EXPECT_EQ(r.status, Status::kError) << bytes;
  return r.error;
}

TEST(HttpRequest, GetWithHeaders) {
  const ParseResult r =
      parse_http_request("GET /drives/0 HTTP/1.1\r\nHost: localhost\r\nAccept:  */* \r\n\r\n");
  ASSERT_EQ(r.status, Status::kComplete);
  EXPECT_EQ(r.request.method, "GET");
  EXPECT_EQ(r.request.target, "/drives/0");
  EXPECT_EQ(r.request.header("host"), "localhost");
  EXPECT_EQ(r.request.header("accept"), "*/*");  // trimmed
  EXPECT_EQ(r.request.body, "");
}

TEST(HttpRequest, BodyFramedByContentLength) {
  const std::string head = "PUT /actions HTTP/1.1\r\nContent-Length: 24\r\n\r\n";
  const std::string body = R"({"action_type": "Stop"})";
  ASSERT_EQ(body.size(), 23u);
  // 23 of 24 bytes: wait for the last one.
  EXPECT_EQ(parse_http_request(head + body).status, Status::kIncomplete);
  const ParseResult r = parse_http_request(head + body + "\n" + "extra");
  ASSERT_EQ(r.status, Status::kComplete);
  EXPECT_EQ(r.request.body, body + "\n");
}

TEST(HttpRequest, FieldNamesAreCaseInsensitive) {
  const ParseResult r = parse_http_request("PATCH /vm HTTP/1.1\r\ncOnTeNt-LeNgTh: 2\r\n\r\n{}");
  ASSERT_EQ(r.status, Status::kComplete);
  EXPECT_EQ(r.request.body, "{}");
}

TEST(HttpRequest, IncompleteUntilTheHeadEnds) {
  EXPECT_EQ(parse_http_request("").status, Status::kIncomplete);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: x\r\n").status, Status::kIncomplete);
}

TEST(HttpRequest, MalformedRequestLinesAre400) {
  EXPECT_EQ(error_of("GET /\r\n\r\n").status, 400);
  EXPECT_EQ(error_of("GET  / HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1 x\r\n\r\n").status, 400);
  EXPECT_EQ(error_of("G(T / HTTP/1.1\r\n\r\n").message, "malformed request method");
  EXPECT_EQ(error_of("GET drives HTTP/1.1\r\n\r\n").message,
            "malformed request target: expected a path starting with '/'");
  EXPECT_EQ(error_of("\r\n\r\n").status, 400);
}

TEST(HttpRequest, OtherVersionsAre505) {
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\n\r\n").status, 505);
  EXPECT_EQ(error_of("GET / HTTP/1.10\r\n\r\n").status, 505);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.0\r\n\r\n").status, Status::kComplete);
}

TEST(HttpRequest, LinesMustEndInCrlf) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\nHost: x\n\n").message, "lines must end in CRLF");
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\n\r\n\r\n").message, "lines must end in CRLF");
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n").message,
            "a bare CR in the request head");
}

TEST(HttpRequest, MalformedFieldsAre400) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nNoColon\r\n\r\n").message, "header line without ':'");
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").message,
            "malformed header field name");
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n").status, 400);
  EXPECT_EQ(error_of(std::string("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26)).message,
            "header field 'A' has a control character in its value");
}

TEST(HttpRequest, BodyWithoutLengthIs411AndChunkedIs501) {
  EXPECT_EQ(error_of("PUT /actions HTTP/1.1\r\n\r\n").status, 411);
  EXPECT_EQ(error_of("PATCH /vm HTTP/1.1\r\n\r\n").message, "PATCH needs a Content-Length");
  EXPECT_EQ(error_of("PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status, 501);
}

TEST(HttpRequest, BadContentLengthIs400) {
  EXPECT_EQ(error_of("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status, 400);
  EXPECT_EQ(error_of("PUT / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n").status, 400);
  EXPECT_EQ(error_of("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n").status, 400);
  EXPECT_EQ(error_of("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n").status,
            400);
  EXPECT_EQ(error_of("PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").message,
            "conflicting Content-Length fields");
}

TEST(HttpRequest, OversizedRequestsAreRefusedNotBuffered) {
  const HttpError body = error_of("PUT /actions HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
  EXPECT_EQ(body.status, 413);
  EXPECT_EQ(body.message, "request body of 100000 bytes exceeds the 65536-byte request limit");
  // A head that fills the limit without ending.
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'a');
  EXPECT_EQ(error_of(head).status, 431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaderFields; ++i) many += "A: b\r\n";
  EXPECT_EQ(error_of(many + "\r\n").status, 431);
}

}  // namespace
}  // namespace minivmm::api
