#include "vmm/config/disk_config.h"

#include <charconv>
#include <limits>
#include <set>
#include <sstream>

namespace minivmm {
namespace {

std::string quoted(const std::string& v) { return "\"" + v + "\""; }

// `ro` is short for `read_only`: one key under two names.
std::string canonical_key(const std::string& key) { return key == "ro" ? "read_only" : key; }

// The typed value of one option, converting text from a --disk flag.
class SettingReader {
 public:
  SettingReader(const DiskSetting& o, DiskSource source) : o_(o), source_(source) {}

  [[noreturn]] void fail(const std::string& reason) const {
    throw DiskSettingError(o_.key, o_.line, reason);
  }

  std::string text() const {
    if (const auto* s = std::get_if<std::string>(&o_.value)) return *s;
    fail("must be a string");
  }

  bool boolean() const {
    if (const auto* b = std::get_if<bool>(&o_.value)) return *b;
    if (const auto* s = std::get_if<std::string>(&o_.value); s && source_ == DiskSource::kFlag) {
      if (*s == "true" || *s == "1") return true;
      if (*s == "false" || *s == "0") return false;
      fail("= " + quoted(*s) + " must be a boolean (true/false or 1/0)");
    }
    fail("must be a boolean (true/false)");
  }

  uint64_t integer(uint64_t min, uint64_t max) const {
    int64_t v = 0;
    if (const auto* i = std::get_if<int64_t>(&o_.value)) {
      v = *i;
    } else if (const auto* s = std::get_if<std::string>(&o_.value);
               s && source_ == DiskSource::kFlag) {
      const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
      if (ec != std::errc() || p != s->data() + s->size()) fail("must be an integer");
    } else {
      fail("must be an integer");
    }
    if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max) {
      fail("= " + std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
           std::to_string(max) + "]");
    }
    return static_cast<uint64_t>(v);
  }

 private:
  const DiskSetting& o_;
  DiskSource source_;
};

storage::IoEngineKind parse_io_engine(const SettingReader& r) {
  const std::string engine = r.text();
  if (engine == "auto") return storage::IoEngineKind::Auto;
  if (engine == "io_uring") return storage::IoEngineKind::IoUring;
  if (engine == "sync") return storage::IoEngineKind::Sync;
  r.fail("= " + quoted(engine) + " must be one of: auto, io_uring, sync");
}

storage::ImageFormat parse_image_format(const SettingReader& r) {
  const std::string format = r.text();
  if (const auto f = storage::parse_image_format(format)) return *f;
  r.fail("= " + quoted(format) + " is not an image format minivmm serves; allowed: " +
         storage::kImageFormats + " (convert other formats with qemu-img convert -O raw)");
}

}  // namespace

DiskConfig parse_disk_config(const std::vector<DiskSetting>& options, DiskSource source,
                             const std::function<std::string(const std::string&)>& resolve_path) {
  DiskConfig d;
  std::set<std::string> seen;
  for (const DiskSetting& o : options) {
    const SettingReader r(o, source);
    if (!seen.insert(canonical_key(o.key)).second) {
      r.fail(o.key == canonical_key(o.key) ? "is given twice"
                                           : "is given twice (as " + canonical_key(o.key) + ")");
    }
    if (o.key == "path") {
      d.path = r.text();
      if (!d.path.empty()) d.path = resolve_path(d.path);
    } else if (o.key == "format") {
      d.format = parse_image_format(r);
    } else if (o.key == "cache") {
      const std::string cache = r.text();
      const auto mode = storage::parse_cache_mode(cache);
      if (!mode) {
        r.fail("= " + quoted(cache) +
               " is not a cache mode; allowed: " + std::string(storage::allowed_cache_modes()));
      }
      d.cache = *mode;
    } else if (canonical_key(o.key) == "read_only") {
      d.read_only = r.boolean();
    } else if (o.key == "serial") {
      d.id = r.text();  // its length: validate_config
    } else if (o.key == "queues") {
      // How many are allowed: validate_config.
      d.queues = static_cast<uint32_t>(r.integer(0, std::numeric_limits<uint32_t>::max()));
    } else if (o.key == "io_engine") {
      d.io_engine = parse_io_engine(r);
    } else if (o.key == "write_log") {
      const std::string log = r.text();
      d.write_log = log.empty() ? log : resolve_path(log);  // "" = no log
    } else {
      r.fail("is an unknown key; a disk takes " + std::string(kDiskKeys));
    }
  }
  if (d.path.empty()) throw DiskSettingError("", 0, "needs a 'path'");
  return d;
}

std::vector<DiskSetting> split_disk_flag(const std::string& spec) {
  std::vector<DiskSetting> options;
  std::istringstream in(spec);
  std::string part;
  bool first = true;
  while (std::getline(in, part, ',')) {
    if (first) {
      first = false;
      if (part.find('=') == std::string::npos) {
        if (!part.empty()) options.push_back({"path", part});
        continue;
      }
    }
    if (part == "ro") {
      options.push_back({"ro", true});
      continue;
    }
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      throw DiskSettingError(part, 0, "is an unknown option; give ro or key=value");
    }
    options.push_back({part.substr(0, eq), part.substr(eq + 1)});
  }
  return options;
}

}  // namespace minivmm
