#include "vmm/config/config.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "vmm/loader/regular_file.h"
#include "vmm/x86_64/boot_params.h"
#include "vmm/x86_64/mptable.h"
#include "vmm/x86_64/virtio_mmio_slots.h"

namespace minivmm {
namespace {

static_assert(kMaxVcpus == kMpMaxCpus);

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

// Reads one table's keys with type checks, and reports keys nobody asked for.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, const std::string& source)
      : table_(table), prefix_(std::move(prefix)), source_(source) {}

  template <typename T>
  std::optional<T> get(const std::string& key, const char* type_name) {
    known_.insert(key);
    const toml::node* node = table_.get(key);
    if (!node) return std::nullopt;
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

  uint64_t get_uint(const std::string& key, uint64_t fallback, uint64_t min, uint64_t max) {
    auto v = get<int64_t>(key, "an integer");
    if (!v) return fallback;
    if (*v < 0 || static_cast<uint64_t>(*v) < min || static_cast<uint64_t>(*v) > max) {
      throw ConfigError(where(source_, *table_.get(key)) + ": key '" + prefix_ + key +
                        "' = " + std::to_string(*v) + " is out of range [" + std::to_string(min) +
                        ", " + std::to_string(max) + "]");
    }
    return static_cast<uint64_t>(*v);
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
  TableReader r(t, "machine.", src);
  c.memory_mib = r.get_uint("memory_mib", c.memory_mib, kMinMemoryMib, kMaxMemoryMib);
  c.vcpus = static_cast<uint32_t>(r.get_uint("vcpus", c.vcpus, 1, kMaxVcpus));
  c.io_poll_us = static_cast<uint32_t>(r.get_uint("io_poll_us", c.io_poll_us, 0, kMaxIoPollUs));
  r.reject_unknown();
}

void parse_kernel(const toml::table& t, VmConfig& c, const std::string& src,
                  const std::string& dir) {
  TableReader r(t, "kernel.", src);
  c.kernel = resolve(r.get_string("path", c.kernel), dir);
  c.initrd = resolve(r.get_string("initrd", c.initrd), dir);
  c.cmdline = r.get_string("cmdline", c.cmdline);
  const std::string pvm = r.get_string("pvm_workarounds", "auto");
  if (const auto w = parse_pvm_workarounds(pvm)) c.pvm_workarounds = *w;
  else r.bad_value("pvm_workarounds", "= \"" + pvm + "\" must be one of: auto, on, off");
  r.reject_unknown();
}

void parse_serial(const toml::table& t, VmConfig& c, const std::string& src,
                  const std::string& dir) {
  TableReader r(t, "serial.", src);
  c.serial_log = resolve(r.get_string("log_file", c.serial_log), dir);
  c.serial_stdin = r.get_bool("stdin", c.serial_stdin);
  r.reject_unknown();
}

void parse_log(const toml::table& t, VmConfig& c, const std::string& src) {
  TableReader r(t, "log.", src);
  c.log_level = r.get_string("level", c.log_level);
  if (!is_log_level(c.log_level)) {
    r.bad_value("level", "= \"" + c.log_level +
                             "\" must be one of: trace, debug, info, warn, error, critical, off");
  }
  r.reject_unknown();
}

void parse_debug(const toml::table& t, VmConfig& c, const std::string& src,
                 const std::string& dir) {
  TableReader r(t, "debug.", src);
  c.rip_sample_ms = static_cast<uint32_t>(r.get_uint("rip_sample_ms", 0, 0, 10000));
  c.system_map = resolve(r.get_string("system_map", ""), dir);
  c.seccomp = r.get_bool("seccomp", c.seccomp);
  r.reject_unknown();
}

// A [[disk]] table: its keys as DiskOptions for parse_disk_config (the same
// parser as --disk), its errors prefixed with the file, line and disk[N].
DiskConfig parse_disk(const toml::table& t, size_t index, const std::string& src,
                      const std::string& dir) {
  std::vector<DiskOption> options;
  for (const auto& [k, node] : t) {
    DiskOption o{std::string(k.str()), {}, static_cast<int>(node.source().begin.line)};
    if (const auto* s = node.as_string()) o.value = s->get();
    else if (const auto* i = node.as_integer()) o.value = i->get();
    else if (const auto* b = node.as_boolean()) o.value = b->get();
    options.push_back(std::move(o));
  }
  const std::string name = "disk[" + std::to_string(index) + "]";
  try {
    return parse_disk_config(options, DiskSource::kToml,
                             [&dir](const std::string& p) { return resolve(p, dir); });
  } catch (const DiskOptionError& e) {
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

void check_disk_count(size_t disks, const std::string& where) {
  // Each disk costs a virtio_mmio.device= entry on the kernel command line
  // (virtio_mmio_slots.h); the run checks the exact room left by the rest of
  // the command line, this only what can never fit.
  const size_t most = virtio_devices_that_fit(0, kVmlinuxCommandLineSize - 1);
  if (disks <= most) return;
  throw ConfigError(where + ": " + std::to_string(disks) + " disks, but at most " +
                    std::to_string(most) +
                    " fit the guest kernel's command line (x86 COMMAND_LINE_SIZE 2048) even "
                    "with nothing else on it: each is a 'virtio_mmio.device=4K@0x...:IRQ' entry");
}

bool is_log_level(const std::string& level) {
  static const std::set<std::string> levels = {"trace", "debug",    "info", "warn",
                                               "error", "critical", "off"};
  return levels.count(level) > 0;
}

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
  TableReader top(root, "", source);
  if (auto* t = sub_table(top, "machine", source)) parse_machine(*t, c, source);
  if (auto* t = sub_table(top, "kernel", source)) parse_kernel(*t, c, source, dir);
  if (auto* t = sub_table(top, "serial", source)) parse_serial(*t, c, source, dir);
  if (auto* t = sub_table(top, "log", source)) parse_log(*t, c, source);
  if (auto* t = sub_table(top, "debug", source)) parse_debug(*t, c, source, dir);
  if (const toml::node* n = top.node("disk")) {
    const toml::array* arr = n->as_array();
    if (!arr)
      throw ConfigError(where(source, *n) + ": 'disk' must be an array of tables ([[disk]])");
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      if (!e.is_table())
        throw ConfigError(where(source, e) + ": disk entries must be tables ([[disk]])");
      c.disks.push_back(parse_disk(*e.as_table(), i, source, dir));
    }
    check_disk_count(c.disks.size(), where(source, *n));
  }
  top.reject_unknown();
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
