// One disk's settings, parsed in one place for both ways of giving them: a
// [[disk]] table of the TOML config and a `--disk PATH,key=value,...` flag.
// Both take the same keys and, for the same bad value, give the same reason;
// only the prefix that says where (file:line and disk[N], or the --disk
// flag) differs. The limits on a value (the serial's length, the number of
// queues) are checked with the whole config, by validate_config.
//
// Keys: kDiskKeys (`ro` is another name of `read_only`). The user-facing
// key `serial` is the virtio-blk device ID (GET_ID), called `id` in the
// code; it has nothing to do with the [serial] console section.
// The limits are the device's own (devices/virtio_blk/virtio_blk_options.h).
// Not storage::DiskOptions: that is what the storage layer opens a disk with.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"
#include "storage/disk.h"

namespace minivmm {

inline constexpr const char* kDiskKeys =
    "path, format, cache, read_only (or ro), serial, queues, io_engine, write_log";

struct DiskConfig {
  std::string path;
  storage::ImageFormat format = storage::ImageFormat::Auto;  // what the image's bytes are
  storage::CacheMode cache = storage::CacheMode::Writeback;
  bool read_only = false;
  std::string id;  // key `serial`: the virtio-blk GET_ID string, at most 20 bytes
  uint32_t queues = 1;
  storage::IoEngineKind io_engine = storage::IoEngineKind::Auto;
  std::string write_log;  // power-loss simulation log (storage/write_log.h); empty = off
};

// One `key = value` of a disk as its source wrote it: a TOML table keeps its
// value's type; a --disk flag's values are all text.
struct DiskSetting {
  std::string key;
  std::variant<std::monostate, std::string, int64_t, bool> value;  // monostate: another TOML type
  int line = 0;  // TOML: the key's line; 0 for a --disk flag
};

enum class DiskSource { kToml, kFlag };

// A bad disk option. what(): the reason, without where it came from;
// `key` is "" when the disk as a whole is wrong (no path).
class DiskSettingError : public Error {
 public:
  DiskSettingError(std::string key, int line, const std::string& reason)
      : Error(reason), key_(std::move(key)), line_(line) {}
  const std::string& key() const { return key_; }
  int line() const { return line_; }

 private:
  std::string key_;
  int line_;
};

// Parses one disk (each value's type and each name of a choice). `resolve_path` turns the path and
// write_log values into the paths to open (${VAR}, ~, relative to the config
// file). From a --disk flag, text values of integer and boolean keys are
// converted ("4"; "true"/"1", "false"/"0"); from TOML they must have the
// TOML type. Throws DiskSettingError.
DiskConfig parse_disk_config(const std::vector<DiskSetting>& options, DiskSource source,
                             const std::function<std::string(const std::string&)>& resolve_path);

// Splits a --disk spec into options: the first field is the path, a bare
// `ro` is ro=true, every other field is key=value.
std::vector<DiskSetting> split_disk_flag(const std::string& spec);

}  // namespace minivmm
