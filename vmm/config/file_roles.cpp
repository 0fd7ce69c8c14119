#include "vmm/config/file_roles.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "vmm/loader/regular_file.h"

namespace minivmm {
namespace {

// What makes two paths one file. A log that does not exist yet is the name
// it will get in its directory, so two new logs can be compared too.
struct FileId {
  enum class Kind { kInode, kBlockDevice, kNewEntry } kind = Kind::kInode;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;  // kNewEntry: the entry in directory (dev, ino)
  bool operator==(const FileId&) const = default;
};

FileId id_of(const struct stat& st) {
  if (S_ISBLK(st.st_mode)) return {FileId::Kind::kBlockDevice, st.st_rdev, 0, {}};
  return {FileId::Kind::kInode, st.st_dev, st.st_ino, {}};
}

struct RunFile {
  std::string role;  // "kernel", "disk 0's image", "serial log"
  std::string path;
  FileId id;
};

std::string named(const std::string& role, const std::string& path) {
  return role + " '" + path + "'";
}

std::optional<struct stat> stat_existing(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

// The directory entry `path` would be created as, when that directory
// exists; nullopt otherwise.
std::optional<FileId> entry_to_create(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  const auto st = stat_existing(dir);
  if (!st || !S_ISDIR(st->st_mode)) return std::nullopt;
  return FileId{FileId::Kind::kNewEntry, st->st_dev, st->st_ino, p.filename().string()};
}

class RunFiles {
 public:
  // An input that exists; `regular_only`: refuse any other kind of file.
  template <typename ErrorType>
  void add_input(const std::string& role, const std::string& path, bool regular_only) {
    if (path.empty()) return;
    const auto st = stat_existing(path);
    if (!st) {  // reported by whoever opens it; a log must not create it
      add_missing_input(role, path);
      return;
    }
    if (regular_only && !S_ISREG(st->st_mode)) {
      throw ErrorType(named(role, path) + " is " + file_type_name(st->st_mode) +
                      ", not a regular file");
    }
    inputs_.push_back({role, path, id_of(*st)});
  }

  void add_disk(size_t index, const DiskConfig& disk) {
    const std::string name = "disk " + std::to_string(index);
    const auto st = stat_existing(disk.path);
    if (!st) {  // the disk's open reports it; a log must not create it
      add_missing_input(name + "'s image", disk.path);
      return;
    }
    const FileId id = id_of(*st);
    for (const Disk& other : disks_) {
      // Two read-only disks may share an image: nothing writes it.
      if (other.id != id || (other.read_only && disk.read_only)) continue;
      throw ConfigError(named(name, disk.path) + " is the same file as " +
                        named(other.name, other.path) +
                        ": an image can back only one disk unless all of them are read-only");
    }
    disks_.push_back({name, disk.path, id, disk.read_only});
    inputs_.push_back({name + "'s image", disk.path, id});
  }

  // `fifo_ok`: the log may be a FIFO, for a process that reads it as it is
  // written (nothing to truncate there).
  void add_log(const std::string& role, const std::string& path, bool fifo_ok) {
    if (path.empty()) return;
    add_output({role, path, log_id(role, path, fifo_ok)}, "writing the log");
  }

  // The control API's socket: created at start, so like a log it must not
  // name another file of the run, and only a socket (one a dead run left
  // behind) may already be there; bind_api_socket decides whether that one
  // is stale.
  void add_socket(const std::string& role, const std::string& path) {
    if (path.empty()) return;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      // The directory's checks (exists, writable), as for a new log.
      add_output({role, path, log_id(role, path, false)}, "creating the socket");
      return;
    }
    if (!S_ISSOCK(st.st_mode)) {
      throw ConfigError(named(role, path) + " is " + file_type_name(st.st_mode) +
                        ", not a socket: refusing to replace it");
    }
    add_output({role, path, id_of(st)}, "creating the socket");
  }

 private:
  // `action`: what would destroy the other file ("writing the log").
  void add_output(const RunFile& log, const std::string& action) {
    const std::string& role = log.role;
    const std::string& path = log.path;
    for (const auto* files : {&inputs_, &logs_}) {
      for (const RunFile& f : *files) {
        if (f.id != log.id) continue;
        throw ConfigError(named(role, path) + " is the same file as " + named(f.role, f.path) +
                          ": " + action + " would destroy it");
      }
    }
    logs_.push_back(log);
  }

  void add_missing_input(const std::string& role, const std::string& path) {
    if (const auto id = entry_to_create(path)) inputs_.push_back({role, path, *id});
  }

  struct Disk {
    std::string name;  // "disk 0"
    std::string path;
    FileId id;
    bool read_only;
  };

  // The identity of a log file, once it is known that it can be written.
  static FileId log_id(const std::string& role, const std::string& path, bool fifo_ok) {
    const auto failed = [&](const std::string& what) {
      const int err = errno;
      return ConfigError(what + ": " + std::strerror(err));
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      if (!S_ISREG(st.st_mode) && !(fifo_ok && S_ISFIFO(st.st_mode))) {
        throw ConfigError(named(role, path) + " is " + file_type_name(st.st_mode) + ", not " +
                          (fifo_ok ? "a regular file or a FIFO" : "a regular file"));
      }
      if (::access(path.c_str(), W_OK) != 0) throw failed("cannot write " + named(role, path));
      return id_of(st);
    }
    if (errno != ENOENT) throw failed("cannot reach " + named(role, path));
    const std::filesystem::path p(path);
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    const std::string cannot_create = "cannot create " + named(role, path) + ": directory '" + dir;
    if (::stat(dir.c_str(), &st) != 0) throw failed(cannot_create + "'");
    if (!S_ISDIR(st.st_mode)) {
      throw ConfigError(cannot_create + "' is " + file_type_name(st.st_mode));
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) throw failed(cannot_create + "'");
    return {FileId::Kind::kNewEntry, st.st_dev, st.st_ino, p.filename().string()};
  }

  std::vector<RunFile> inputs_;
  std::vector<RunFile> logs_;
  std::vector<Disk> disks_;
};

}  // namespace

void check_run_files(const VmConfig& config, const std::string& config_path) {
  RunFiles files;
  files.add_input<ConfigError>("config file", config_path, false);
  files.add_input<BootFileError>("kernel", config.kernel, true);
  files.add_input<BootFileError>("initrd", config.initrd, true);
  files.add_input<ConfigError>("System.map", config.system_map, true);
  for (size_t i = 0; i < config.disks.size(); ++i) files.add_disk(i, config.disks[i]);
  // The console has stdout for a reader; a write log has no other way out.
  files.add_log("serial log", config.serial_log, false);
  for (size_t i = 0; i < config.disks.size(); ++i) {
    files.add_log("disk " + std::to_string(i) + "'s write log", config.disks[i].write_log, true);
  }
  files.add_socket("API socket", config.api_socket);
}

}  // namespace minivmm
