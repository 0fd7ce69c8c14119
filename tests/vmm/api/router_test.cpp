#include "vmm/api/router.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>

#include <nlohmann/json.hpp>

#include "vmm/api/prometheus_metrics.h"

namespace minivmm::api {
namespace {

using nlohmann::json;

// A VM that records what the API asked of it.
class FakeVm : public VmControl {
 public:
  std::string id() const override { return "fake"; }
  VmState state() const override { return paused ? VmState::kPaused : VmState::kRunning; }
  uint64_t uptime_ms() const override { return 1500; }
  json config() const override { return {{"machine-config", {{"vcpu_count", 1}}}}; }
  std::vector<DriveReport> drives() const override {
    DriveReport d;
    d.drive_id = "0";
    d.path_on_host = "/img/root.img";
    d.cache_type = "writeback";
    d.io_engine = "auto";
    d.stats.reads = 7;
    d.stats.writes = 3;
    d.stats.at_risk_bytes = 4096;
    d.stats.flush_latency_us.record(100);
    d.stats.flush_latency_us.record(300);
    return {d};
  }
  std::string pause() override {
    paused = true;
    return "";
  }
  std::string resume() override {
    paused = false;
    return "";
  }
  std::string stop() override {
    ++stops;
    return "";
  }
  FlushDisksResult flush_disks() override {
    ++flushes;
    return flush_result;
  }
  bool paused = false;
  int stops = 0;
  int flushes = 0;
  FlushDisksResult flush_result;  // what flush_disks() answers
};

HttpResponse call(FakeVm& vm, const std::string& method, const std::string& target,
                  const std::string& body = "") {
  HttpRequest r;
  r.method = method;
  r.target = target;
  r.body = body;
  return handle_request(r, vm);
}

std::string fault_message(const HttpResponse& r) {
  return json::parse(r.body).at("fault_message").get<std::string>();
}

TEST(Router, RootShowsIdStateVersionUptime) {
  FakeVm vm;
  const HttpResponse r = call(vm, "GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  const json j = json::parse(r.body);
  EXPECT_EQ(j["id"], "fake");
  EXPECT_EQ(j["state"], "Running");
  EXPECT_EQ(j["vmm_version"], kVmmVersion);
  EXPECT_EQ(j["uptime_ms"], 1500);
}

TEST(Router, DrivesListAndOneDriveWithCounters) {
  FakeVm vm;
  const json list = json::parse(call(vm, "GET", "/drives").body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["drive_id"], "0");
  EXPECT_EQ(list[0]["path_on_host"], "/img/root.img");
  EXPECT_EQ(list[0]["is_read_only"], false);
  EXPECT_EQ(list[0]["cache_type"], "writeback");
  EXPECT_EQ(list[0]["stats"]["read_ops"], 7);
  EXPECT_EQ(list[0]["stats"]["at_risk_bytes"], 4096);
  EXPECT_EQ(list[0]["stats"]["flush_latency_us"]["count"], 2);
  EXPECT_EQ(list[0]["stats"]["flush_latency_us"]["max"], 300);
  const HttpResponse one = call(vm, "GET", "/drives/0");
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body), list[0]);
  const HttpResponse missing = call(vm, "GET", "/drives/9");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(fault_message(missing), "no drive with drive_id '9' (GET /drives lists them)");
}

TEST(Router, VmConfigIsTheControlsConfig) {
  FakeVm vm;
  EXPECT_EQ(json::parse(call(vm, "GET", "/vm/config").body), vm.config());
}

TEST(Router, PauseResumeAndStop) {
  FakeVm vm;
  EXPECT_EQ(call(vm, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(json::parse(call(vm, "GET", "/").body)["state"], "Paused");
  EXPECT_EQ(call(vm, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_FALSE(vm.paused);
  EXPECT_EQ(call(vm, "PUT", "/actions", R"({"action_type": "Stop"})").status, 204);
  EXPECT_EQ(vm.stops, 1);
}

TEST(Router, UnknownRoutesAre404AndWrongMethods405) {
  FakeVm vm;
  const HttpResponse r = call(vm, "GET", "/machine");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(fault_message(r), "no resource /machine (see docs/api.md)");
  const HttpResponse m = call(vm, "DELETE", "/drives");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "GET");
  EXPECT_EQ(call(vm, "GET", "/actions").status, 405);
  EXPECT_EQ(call(vm, "PUT", "/vm", R"({"state": "Paused"})").status, 405);
  EXPECT_FALSE(vm.paused);
}

TEST(Router, BadBodiesAre400NamingWhatIsWrong) {
  FakeVm vm;
  struct Case {
    std::string target, body, message;
  };
  const Case cases[] = {
      {"/vm", "{", "PATCH /vm: the body is not valid JSON"},
      {"/vm", "[]", "PATCH /vm: the body must be a JSON object with state"},
      {"/vm", R"({"state": "Paused", "force": true})",
       "PATCH /vm: unknown field 'force'; it takes state"},
      {"/vm", R"({"state": 1})", "PATCH /vm: field 'state' must be a string"},
      {"/vm", "{}", "PATCH /vm: missing field 'state'"},
      {"/vm", R"({"state": "Frozen"})", "PATCH /vm: state 'Frozen' must be Paused or Resumed"},
  };
  for (const Case& c : cases) {
    const HttpResponse r = call(vm, "PATCH", c.target, c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(fault_message(r), c.message);
  }
  const HttpResponse a = call(vm, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(fault_message(a),
            "PUT /actions: unknown action_type 'SendCtrlAltDel'; supported: Stop, FlushDisks");
  // Action names are case-sensitive, as Firecracker's.
  EXPECT_EQ(call(vm, "PUT", "/actions", R"({"action_type": "flushdisks"})").status, 400);
  EXPECT_EQ(call(vm, "PUT", "/actions", R"({"action_type": "FlushDisks", "x": "y"})").status, 400);
  EXPECT_FALSE(vm.paused);
  EXPECT_EQ(vm.stops, 0);
  EXPECT_EQ(vm.flushes, 0);
}

DriveFlush flushed_drive(const std::string& id, const std::string& mode, int error = 0) {
  return {id, "/img/" + id + ".img", mode, true, error, 0, 0};
}

TEST(Router, FlushDisksAnswersEachDrivesReport) {
  FakeVm vm;
  vm.flush_result.drives = {flushed_drive("0", "writeback"), flushed_drive("1", "unsafe")};
  vm.flush_result.drives[1].flushed = false;
  const HttpResponse r = call(vm, "PUT", "/actions", R"({"action_type": "FlushDisks"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"drives":[
              {"drive_id":"0","cache_type":"writeback","flushed":true,"at_risk_bytes":0,"at_risk_requests":0},
              {"drive_id":"1","cache_type":"unsafe","flushed":false,"at_risk_bytes":0,"at_risk_requests":0}]})"));
  EXPECT_EQ(vm.flushes, 1);
}

TEST(Router, FlushDisksFailureNamesEachFailedDriveAndErrno) {
  FakeVm vm;
  vm.flush_result.drives = {flushed_drive("0", "writeback"), flushed_drive("1", "none", -EIO),
                            flushed_drive("2", "unsafe", -ENOSPC)};
  const HttpResponse r = call(vm, "PUT", "/actions", R"({"action_type": "FlushDisks"})");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(fault_message(r),
            "PUT /actions FlushDisks: flush failed on drive 1 (/img/1.img): "
            "Input/output error (errno 5); drive 2 (/img/2.img): No space left on device "
            "(errno 28); the disk fails every later flush until restart");
}

TEST(Router, FlushDisksOutlastingTheWaitIs504AndRefusalIs400) {
  FakeVm vm;
  vm.flush_result.timed_out = true;
  vm.flush_result.waited = std::chrono::milliseconds(8000);
  const HttpResponse t = call(vm, "PUT", "/actions", R"({"action_type": "FlushDisks"})");
  EXPECT_EQ(t.status, 504);
  EXPECT_EQ(fault_message(t),
            "PUT /actions FlushDisks: the disks did not drain and flush within 8000 ms; "
            "they take requests again once it ends");
  EXPECT_NE(serialize(t).find("HTTP/1.1 504 Gateway Timeout\r\n"), std::string::npos);
  vm.flush_result = {};
  vm.flush_result.refused = "the VM is stopping";
  const HttpResponse s = call(vm, "PUT", "/actions", R"({"action_type": "FlushDisks"})");
  EXPECT_EQ(s.status, 400);
  EXPECT_EQ(fault_message(s), "PUT /actions FlushDisks: the VM is stopping");
}

TEST(Router, ResponsesCloseAndCarryTheirLength) {
  const std::string wire = serialize(fault(404, "x"));
  EXPECT_EQ(wire,
            "HTTP/1.1 404 Not Found\r\nServer: minivmm\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nContent-Length: 21\r\n\r\n"
            R"({"fault_message":"x"})");
}

// A message quoting bytes that are not UTF-8 (a Content-Length of 0xff
// bytes) still makes a JSON body; the fuzz target found the exception.
TEST(Router, FaultQuotingInvalidUtf8IsStillJson) {
  const HttpResponse r = fault(400,
                               "Content-Length '\xff\xff"
                               "1' is not a number");
  EXPECT_EQ(fault_message(r),
            "Content-Length '\xef\xbf\xbd\xef\xbf\xbd"
            "1' is not a number");
}

TEST(Router, MetricsInPrometheusTextFormat) {
  FakeVm vm;
  const HttpResponse r = call(vm, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("# TYPE minivmm_disk_reads_total counter\n"
                        "minivmm_disk_reads_total{drive_id=\"0\"} 7\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("minivmm_disk_at_risk_bytes{drive_id=\"0\"} 4096\n"), std::string::npos);
  // 300 us lies in the bucket [256, 511]; the bound is clamped to the max.
  EXPECT_NE(r.body.find("minivmm_disk_flush_latency_max_seconds{drive_id=\"0\"} 0.0003\n"),
            std::string::npos);
  EXPECT_NE(r.body.find("minivmm_uptime_seconds 1.5\n"), std::string::npos);
}

}  // namespace
}  // namespace minivmm::api
