#include "vmm/api/router.h"

#include <fmt/format.h>

#include <cstring>
#include <set>

#include "vmm/api/drive_json.h"
#include "vmm/api/prometheus_metrics.h"

namespace minivmm::api {
namespace {

using nlohmann::json;

// Messages quote what the client sent (a Content-Length value, a path),
// which need not be UTF-8: replaced with U+FFFD rather than dump()'s
// type_error, so every fault still goes out.
HttpResponse json_response(int status, const json& body) {
  return {status,
          "application/json",
          body.dump(-1, ' ', false, json::error_handler_t::replace),
          {}};
}

HttpResponse no_content() { return {204, {}, {}, {}}; }

HttpResponse method_not_allowed(const HttpRequest& req, const std::string& allow) {
  HttpResponse r =
      fault(405, req.method + " is not allowed on " + req.target + "; it takes " + allow);
  r.allow = allow;
  return r;
}

// A JSON object body whose fields are exactly among `fields`, each a
// string; the fault to answer otherwise. "What is wrong" names the field.
// json's destructor may allocate (it frees nested values without
// recursion); out of memory there ends the process, as anywhere here.
struct Body {  // NOLINT(bugprone-exception-escape)
  json value;
  std::optional<HttpResponse> error;
};

Body object_body(const HttpRequest& req, const std::set<std::string>& fields) {
  Body b;
  const std::string route = req.method + " " + req.target;
  std::string names;
  for (const auto& f : fields) names += (names.empty() ? "" : ", ") + f;
  b.value = json::parse(req.body, nullptr, false);
  if (b.value.is_discarded()) {
    b.error = fault(400, route + ": the body is not valid JSON");
    return b;
  }
  if (!b.value.is_object()) {
    b.error = fault(400, route + ": the body must be a JSON object with " + names);
    return b;
  }
  for (const auto& [key, value] : b.value.items()) {
    if (!fields.count(key)) {
      b.error = fault(400, route + ": unknown field '" + key + "'; it takes " + names);
      return b;
    }
    if (!value.is_string()) {
      b.error = fault(400, route + ": field '" + key + "' must be a string");
      return b;
    }
  }
  for (const auto& f : fields) {
    if (!b.value.contains(f)) {
      b.error = fault(400, route + ": missing field '" + f + "'");
      return b;
    }
  }
  return b;
}

HttpResponse done_or_fault(const std::string& why) {
  return why.empty() ? no_content() : fault(400, why);
}

HttpResponse get_root(const VmControl& vm) {
  return json_response(200, {{"id", vm.id()},
                             {"state", state_name(vm.state())},
                             {"vmm_version", kVmmVersion},
                             {"app_name", "minivmm"},
                             {"uptime_ms", vm.uptime_ms()}});
}

HttpResponse get_drives(const VmControl& vm) {
  json list = json::array();
  for (const DriveReport& d : vm.drives()) list.push_back(drive_json(d));
  return json_response(200, list);
}

HttpResponse get_drive(const VmControl& vm, const std::string& id) {
  for (const DriveReport& d : vm.drives()) {
    if (d.drive_id == id) return json_response(200, drive_json(d));
  }
  return fault(404, "no drive with drive_id '" + id + "' (GET /drives lists them)");
}

// FlushDisks: 200 with each disk's report; 500 naming every disk whose
// flush failed (its sticky error stays: later flushes fail too); 504 when
// the flush outlasted the wait (the disks resume when it ends).
HttpResponse flush_disks(VmControl& vm) {
  const FlushDisksResult r = vm.flush_disks();
  if (!r.refused.empty()) return fault(400, "PUT /actions FlushDisks: " + r.refused);
  if (r.timed_out) {
    return fault(504, fmt::format("PUT /actions FlushDisks: the disks did not drain and flush "
                                  "within {} ms; they take requests again once it ends",
                                  r.waited.count()));
  }
  std::string failed;
  json drives = json::array();
  for (const DriveFlush& d : r.drives) {
    if (d.error != 0) {
      failed += fmt::format("{}drive {} ({}): {} (errno {})", failed.empty() ? "" : "; ",
                            d.drive_id, d.path_on_host, std::strerror(-d.error), -d.error);
    }
    drives.push_back({{"drive_id", d.drive_id},
                      {"cache_type", d.cache_type},
                      {"flushed", d.flushed},
                      {"at_risk_bytes", d.at_risk_bytes},
                      {"at_risk_requests", d.at_risk_requests}});
  }
  if (!failed.empty()) {
    return fault(500, "PUT /actions FlushDisks: flush failed on " + failed +
                          "; the disk fails every later flush until restart");
  }
  return json_response(200, {{"drives", drives}});
}

// PUT /actions: {"action_type": "Stop" | "FlushDisks"}. Firecracker's
// SendCtrlAltDel needs a keyboard the i8042 here does not emulate.
HttpResponse put_actions(const HttpRequest& req, VmControl& vm) {
  Body b = object_body(req, {"action_type"});
  if (b.error) return *b.error;
  const std::string action = b.value["action_type"];
  if (action == "Stop") return done_or_fault(vm.stop());
  if (action == "FlushDisks") return flush_disks(vm);
  return fault(400,
               "PUT /actions: unknown action_type '" + action + "'; supported: Stop, FlushDisks");
}

// PATCH /vm: {"state": "Paused" | "Resumed"}, as Firecracker names them.
HttpResponse patch_vm(const HttpRequest& req, VmControl& vm) {
  Body b = object_body(req, {"state"});
  if (b.error) return *b.error;
  const std::string state = b.value["state"];
  if (state == "Paused") return done_or_fault(vm.pause());
  if (state == "Resumed") return done_or_fault(vm.resume());
  return fault(400, "PATCH /vm: state '" + state + "' must be Paused or Resumed");
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

}  // namespace

const char* state_name(VmState state) {
  switch (state) {
    case VmState::kRunning: return "Running";
    case VmState::kPaused: return "Paused";
    case VmState::kStopping: return "Stopping";
  }
  return "Unknown";
}

HttpResponse fault(int status, const std::string& message) {
  return json_response(status, {{"fault_message", message}});
}

HttpResponse handle_request(const HttpRequest& req, VmControl& vm) {
  const std::string& path = req.target;
  const std::string& m = req.method;
  if (path == "/") return m == "GET" ? get_root(vm) : method_not_allowed(req, "GET");
  if (path == "/vm/config") {
    return m == "GET" ? json_response(200, vm.config()) : method_not_allowed(req, "GET");
  }
  if (path == "/drives") return m == "GET" ? get_drives(vm) : method_not_allowed(req, "GET");
  if (path.rfind("/drives/", 0) == 0 && path.size() > 8) {
    return m == "GET" ? get_drive(vm, path.substr(8)) : method_not_allowed(req, "GET");
  }
  if (path == "/metrics") {
    if (m != "GET") return method_not_allowed(req, "GET");
    return {200, "text/plain; version=0.0.4; charset=utf-8", prometheus_metrics(vm), {}};
  }
  if (path == "/actions") return m == "PUT" ? put_actions(req, vm) : method_not_allowed(req, "PUT");
  if (path == "/vm") return m == "PATCH" ? patch_vm(req, vm) : method_not_allowed(req, "PATCH");
  return fault(404, "no resource " + path + " (see docs/api.md)");
}

std::string serialize(const HttpResponse& r) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: minivmm\r\nConnection: close\r\n",
                                r.status, reason_phrase(r.status));
  if (!r.allow.empty()) out += "Allow: " + r.allow + "\r\n";
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  out += fmt::format("Content-Length: {}\r\n\r\n", r.body.size());
  out += r.body;
  return out;
}

}  // namespace minivmm::api
