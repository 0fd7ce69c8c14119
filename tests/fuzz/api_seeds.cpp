// Seeds of the API request target (api_request_fuzz.cpp): one request per
// route and method, the body shapes the router checks, and the framing
// errors the parser refuses, so a run starts at every branch.
#include <string>

#include "tests/fuzz/fuzz_seeds.h"

std::vector<std::vector<uint8_t>> builtin_seeds() {
  const std::string put_stop = R"({"action_type": "Stop"})";
  const std::string texts[] = {
      "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "GET /vm/config HTTP/1.1\r\n\r\n",
      "GET /drives HTTP/1.1\r\nAccept: */*\r\n\r\n",
      "GET /drives/0 HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.0\r\n\r\n",
      "PUT /actions HTTP/1.1\r\nContent-Length: " + std::to_string(put_stop.size()) + "\r\n\r\n" +
          put_stop,
      std::string(
          "PATCH /vm HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n") +
          R"({"state":"Paused"})",
      std::string("PATCH /vm HTTP/1.1\r\nContent-Length: 30\r\n\r\n") +
          R"({"state":"Resumed","x":[1,{}]})",
      "PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "PUT /actions HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
      "DELETE /drives/0 HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      // Not UTF-8 in a value the fault message quotes: once an exception
      // out of the JSON serializer (the fuzzer's first finding).
      // (octal escapes: at most three digits, so the "30" after them stays text)
      "PATCH /vm HTTP/1.1\r\nContent-Length: \377\377\377\37730\r\n\r\n{}",
  };
  std::vector<std::vector<uint8_t>> seeds;
  for (const std::string& t : texts) seeds.emplace_back(t.begin(), t.end());
  return seeds;
}
