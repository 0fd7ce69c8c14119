// libFuzzer target over the control API's request handling: the bytes a
// client sends, through the HTTP parser (vmm/api/http_request.h), and when
// they make a request, through the router and its JSON body checks
// (vmm/api/router.h) against a fake VM, to the serialized response. Every
// input must give a well-formed response or a need for more bytes; never
// a crash, a sanitizer report or an unbounded allocation.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmm/api/http_request.h"
#include "vmm/api/router.h"

namespace {

using namespace minivmm::api;

class FuzzVm : public VmControl {
 public:
  std::string id() const override { return "fuzz"; }
  VmState state() const override { return paused_ ? VmState::kPaused : VmState::kRunning; }
  uint64_t uptime_ms() const override { return 1; }
  nlohmann::json config() const override { return {{"machine-config", {{"vcpu_count", 1}}}}; }
  std::vector<DriveReport> drives() const override {
    DriveReport d;
    d.drive_id = "0";
    d.stats.flush_latency_us.record(5);
    return {d};
  }
  std::string pause() override {
    paused_ = true;
    return "";
  }
  std::string resume() override {
    paused_ = false;
    return "";
  }
  std::string stop() override { return ""; }
  FlushDisksResult flush_disks() override {
    FlushDisksResult r;
    r.drives.push_back({"0", "/img/root.img", "writeback", true, 0, 0, 0});
    return r;
  }

 private:
  bool paused_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The server never holds more than kMaxRequestBytes of one request.
  const std::string_view bytes(reinterpret_cast<const char*>(data),
                               std::min(size, kMaxRequestBytes));
  const ParseResult parsed = parse_http_request(bytes);
  HttpResponse response;
  switch (parsed.status) {
    case ParseResult::Status::kIncomplete: return 0;
    case ParseResult::Status::kError:
      if (parsed.error.status < 400 || parsed.error.status > 599) std::abort();
      response = fault(parsed.error.status, parsed.error.message);
      break;
    case ParseResult::Status::kComplete: {
      if (parsed.request.body.size() > bytes.size()) std::abort();
      FuzzVm vm;
      response = handle_request(parsed.request, vm);
      break;
    }
  }
  const std::string wire = serialize(response);
  if (wire.rfind("HTTP/1.1 ", 0) != 0) std::abort();
  return 0;
}
