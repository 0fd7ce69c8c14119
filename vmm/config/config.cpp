#include "vmm/config/config.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "vmm/config/validate_config.h"
#include "vmm/loader/regular_file.h"

namespace minivmm {
namespace {

std::string where(const std::string& source, const toml::node& node) {
  std::ostringstream s;
  s << source << ":" << node.source().begin.line;
  return s.str();
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : fallback;
}

std::string default_cache_dir() {
  const std::string home = env_or("HOME", "/root");
  return env_or("XDG_CACHE_HOME", home + "/.cache") + "/minivmm";
}

// Reads one table's keys with type checks, records where each value came
// from (for validate_config's messages), and reports keys nobody asked for.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, const std::string& source,
              VmConfig& config)
      : table_(table), prefix_(std::move(prefix)), source_(source), config_(config) {}

  template <typename T>
  std::optional<T> get(const std::string& key, const char* type_name) {
    known_.insert(key);
    const toml::node* node = table_.get(key);
    if (!node) return std::nullopt;
    config_.sources[prefix_ + key] = {where(source_, *node), false};
    auto v = node->value<T>();
    if (!v || !node->is<T>()) {
      throw ConfigError(where(source_, *node) + ": key '" + prefix_ + key + "' must be " +
                        type_name);
    }
    return v;
  }

  // Marks `key` as known and returns its node (nullptr when absent).
  const toml::node* node(const std::string& key) {
    known_.insert(key);
    return table_.get(key);
  }

  // An unsigned integer that fits T; whether it is allowed is validate_config's.
  template <typename T>
  T get_uint(const std::string& key, T fallback) {
    auto v = get<int64_t>(key, "an integer");
    if (!v) return fallback;
    if (*v < 0 || static_cast<uint64_t>(*v) > std::numeric_limits<T>::max()) {
      bad_value(key, "= " + std::to_string(*v) + " is not an integer in [0, " +
                         std::to_string(std::numeric_limits<T>::max()) + "]");
    }
    return static_cast<T>(*v);
  }

  std::string get_string(const std::string& key, const std::string& fallback) {
    return get<std::string>(key, "a string").value_or(fallback);
  }

  bool get_bool(const std::string& key, bool fallback) {
    return get<bool>(key, "a boolean (true/false)").value_or(fallback);
  }

  [[noreturn]] void bad_value(const std::string& key, const std::string& why) {
    throw ConfigError(where(source_, *table_.get(key)) + ": key '" + prefix_ + key + "' " + why);
  }

  void reject_unknown() {
    for (const auto& [k, node] : table_) {
      const std::string key(k.str());
      if (!known_.count(key)) {
        throw ConfigError(where(source_, node) + ": unknown key '" + prefix_ + key + "'");
      }
    }
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  const std::string& source_;
  VmConfig& config_;
  std::set<std::string> known_;
};

const toml::table* sub_table(TableReader& top, const std::string& key, const std::string& source) {
  const toml::node* n = top.node(key);
  if (!n) return nullptr;
  if (!n->is_table()) throw ConfigError(where(source, *n) + ": '" + key + "' must be a table");
  return n->as_table();
}

std::string resolve(const std::string& value, const std::string& base_dir) {
  if (value.empty()) return value;
  std::string p = expand_path(value);
  if (!base_dir.empty() && !p.empty() && p[0] != '/') p = base_dir + "/" + p;
  return p;
}

void parse_machine(const toml::table& t, VmConfig& c, const std::string& src) {
  TableReader r(t, "machine.", src, c);
  c.memory_mib = r.get_uint("memory_mib", c.memory_mib);
  c.vcpus = r.get_uint("vcpus", c.vcpus);
  c.io_poll_us = r.get_uint("io_poll_us", c.io_poll_us);
  r.reject_unknown();
}

void parse_kernel(const toml::table& t, VmConfig& c, const std::string& src,
                  const std::string& dir) {
  TableReader r(t, "kernel.", src, c);
  c.kernel = resolve(r.get_string("path", c.kernel), dir);
  c.initrd = resolve(r.get_string("initrd", c.initrd), dir);
  c.cmdline = r.get_string("cmdline", c.cmdline);
  if (const auto pvm = r.get<std::string>("pvm_workarounds", "a string")) {
    try {
      c.pvm_workarounds = pvm_workarounds_value(*pvm);
    } catch (const ConfigValueError& e) {
      r.bad_value("pvm_workarounds", e.what());
    }
  }
  r.reject_unknown();
}

void parse_serial(const toml::table& t, VmConfig& c, const std::string& src,
                  const std::string& dir) {
  TableReader r(t, "serial.", src, c);
  c.serial_log = resolve(r.get_string("log_file", c.serial_log), dir);
  c.serial_stdin = r.get_bool("stdin", c.serial_stdin);
  r.reject_unknown();
}

void parse_log(const toml::table& t, VmConfig& c, const std::string& src) {
  TableReader r(t, "log.", src, c);
  c.log_level = r.get_string("level", c.log_level);
  r.reject_unknown();
}

void parse_debug(const toml::table& t, VmConfig& c, const std::string& src,
                 const std::string& dir) {
  TableReader r(t, "debug.", src, c);
  c.rip_sample_ms = r.get_uint("rip_sample_ms", c.rip_sample_ms);
  c.system_map = resolve(r.get_string("system_map", ""), dir);
  c.seccomp = r.get_bool("seccomp", c.seccomp);
  r.reject_unknown();
}

void parse_api(const toml::table& t, VmConfig& c, const std::string& src, const std::string& dir) {
  TableReader r(t, "api.", src, c);
  c.api_socket = resolve(r.get_string("socket", c.api_socket), dir);
  r.reject_unknown();
}

// A [[disk]] table: its keys as DiskSettings for parse_disk_config (the same
// parser as --disk), its errors prefixed with the file, line and disk[N].
DiskConfig parse_disk(const toml::table& t, size_t index, const std::string& src,
                      const std::string& dir, VmConfig& c) {
  const std::string name = "disk[" + std::to_string(index) + "]";
  c.sources[name] = {where(src, t), false};
  std::vector<DiskSetting> options;
  for (const auto& [k, node] : t) {
    DiskSetting o{std::string(k.str()), {}, static_cast<int>(node.source().begin.line)};
    c.sources[name + "." + o.key] = {where(src, node), false};
    if (const auto* s = node.as_string()) o.value = s->get();
    else if (const auto* i = node.as_integer()) o.value = i->get();
    else if (const auto* b = node.as_boolean()) o.value = b->get();
    options.push_back(std::move(o));
  }
  try {
    return parse_disk_config(options, DiskSource::kToml,
                             [&dir](const std::string& p) { return resolve(p, dir); });
  } catch (const DiskSettingError& e) {
    std::ostringstream s;
    if (e.key().empty()) {
      s << src << ":" << t.source().begin.line << ": " << name << " " << e.what();
    } else {
      s << src << ":" << e.line() << ": key '" << name << "." << e.key() << "' " << e.what();
    }
    throw ConfigError(s.str());
  }
}

}  // namespace

std::string expand_path(const std::string& value) {
  std::string out;
  size_t i = 0;
  if (value.rfind("~/", 0) == 0 || value == "~") {
    out = env_or("HOME", "/root");
    i = 1;
  }
  while (i < value.size()) {
    if (value.compare(i, 2, "${") == 0) {
      const size_t end = value.find('}', i + 2);
      if (end == std::string::npos) throw ConfigError("unterminated ${ in '" + value + "'");
      const std::string name = value.substr(i + 2, end - i - 2);
      if (name == "MINIVMM_CACHE") {
        out += env_or("MINIVMM_CACHE", default_cache_dir());
      } else {
        const char* v = std::getenv(name.c_str());
        if (!v)
          throw ConfigError("environment variable " + name + " (in '" + value + "') is not set");
        out += v;
      }
      i = end + 1;
    } else {
      out += value[i++];
    }
  }
  return out;
}

VmConfig parse_config(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << source << ":" << e.source().begin.line << ": TOML syntax error: " << e.description();
    throw ConfigError(s.str());
  }
  std::string dir;
  if (source.find('/') != std::string::npos || std::filesystem::exists(source)) {
    dir = std::filesystem::absolute(source).parent_path().string();
  }

  VmConfig c;
  TableReader top(root, "", source, c);
  if (auto* t = sub_table(top, "machine", source)) parse_machine(*t, c, source);
  if (auto* t = sub_table(top, "kernel", source)) parse_kernel(*t, c, source, dir);
  if (auto* t = sub_table(top, "serial", source)) parse_serial(*t, c, source, dir);
  if (auto* t = sub_table(top, "log", source)) parse_log(*t, c, source);
  if (auto* t = sub_table(top, "debug", source)) parse_debug(*t, c, source, dir);
  if (auto* t = sub_table(top, "api", source)) parse_api(*t, c, source, dir);
  if (const toml::node* n = top.node("disk")) {
    const toml::array* arr = n->as_array();
    if (!arr)
      throw ConfigError(where(source, *n) + ": 'disk' must be an array of tables ([[disk]])");
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      if (!e.is_table())
        throw ConfigError(where(source, e) + ": disk entries must be tables ([[disk]])");
      c.disks.push_back(parse_disk(*e.as_table(), i, source, dir, c));
    }
    c.sources["disk"] = {where(source, *n), false};
  }
  top.reject_unknown();
  try {
    validate_config(c);
  } catch (const ConfigValueError& e) {
    throw ConfigError(describe(c, e));
  }
  return c;
}

VmConfig load_config_file(const std::string& path) {
  std::string text;
  try {
    const RegularFile file = open_regular_file(path, "config file", kMaxConfigFileBytes);
    text.resize(file.size);
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::read(file.fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw sys_error("cannot read config file '" + path + "'");
      if (n == 0) break;  // shrank since fstat: parse what is there
      done += static_cast<size_t>(n);
    }
    text.resize(done);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  return parse_config(text, path);
}

}  // namespace minivmm
