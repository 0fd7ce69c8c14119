#include "test_image.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/error.h"
#include "common/unique_fd.h"
#include "storage/open_disk.h"

namespace minivmm::storage::test {
namespace {

constexpr long kTmpfsMagic = 0x01021994;

std::string disk_backed_base() {
  for (const char* dir : {"/var/tmp", "/tmp"}) {
    struct statfs fs {};
    if (::statfs(dir, &fs) == 0 && fs.f_type != kTmpfsMagic) return dir;
  }
  throw Error("no disk-backed temp directory (/var/tmp, /tmp are tmpfs)");
}

}  // namespace

TempDir::TempDir() {
  std::string templ = disk_backed_base() + "/minivmm-storage-XXXXXX";
  if (!::mkdtemp(templ.data())) throw sys_error("mkdtemp " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint8_t pattern_byte(uint64_t i, uint8_t seed) { return static_cast<uint8_t>(i * 7 + seed); }

void make_image(const std::string& path, uint64_t size, uint8_t seed) {
  std::vector<uint8_t> data(size);
  for (uint64_t i = 0; i < size; ++i) data[i] = pattern_byte(i, seed);
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd) throw sys_error("create " + path);
  if (size && ::pwrite(fd.get(), data.data(), size, 0) != static_cast<ssize_t>(size)) {
    throw sys_error("fill " + path);
  }
}

std::vector<uint8_t> read_file(const std::string& path, uint64_t offset, uint64_t len) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open " + path);
  std::vector<uint8_t> out(len);
  if (::pread(fd.get(), out.data(), len, static_cast<off_t>(offset)) != static_cast<ssize_t>(len)) {
    throw sys_error("pread " + path);
  }
  return out;
}

std::string open_error(const DiskOptions& options) {
  try {
    Disk::open(options);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

int find_fd_for(const std::string& path) {
  const std::string want = std::filesystem::canonical(path).string();
  int found = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || target.string() != want) continue;
    found = std::max(found, std::stoi(entry.path().filename().string()));
  }
  return found;
}

unsigned long fdinfo_flags(int fd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
  std::string key;
  while (in >> key) {
    if (key == "flags:") {
      std::string octal;
      in >> octal;
      return std::stoul(octal, nullptr, 8);
    }
  }
  throw std::runtime_error("no flags line in fdinfo of fd " + std::to_string(fd));
}

int run_request(Disk& disk, DiskRequest request) {
  bool finished = false;
  int result = 1;
  request.done = [&](int r) {
    finished = true;
    result = r;
  };
  disk.submit(std::move(request));
  disk.kick();
  while (!finished) {
    pollfd pfd{disk.completion_fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1)
      throw std::runtime_error("completion_fd never became readable");
    disk.process_completions();
  }
  return result;
}

int run_read(Disk& disk, uint64_t offset, void* buf, size_t len) {
  DiskRequest r;
  r.op = RequestType::Read;
  r.offset = offset;
  const iovec v{buf, len};  // run_request waits: the view outlives the request
  r.iov = {&v, 1};
  return run_request(disk, std::move(r));
}

int run_write(Disk& disk, uint64_t offset, const void* buf, size_t len) {
  DiskRequest r;
  r.op = RequestType::Write;
  r.offset = offset;
  const iovec v{const_cast<void*>(buf), len};
  r.iov = {&v, 1};
  return run_request(disk, std::move(r));
}

int run_flush(Disk& disk) {
  DiskRequest r;
  r.op = RequestType::Flush;
  return run_request(disk, std::move(r));
}

std::unique_ptr<Disk> open_traced(const DiskOptions& options, IoEngineKind kind,
                                  std::shared_ptr<IoTrace> trace) {
  return open_disk_with_engine(options, std::make_unique<TracingEngine>(make_io_engine(kind),
                                                                        std::move(trace)));
}

bool uring_available() {
  try {
    make_uring_engine(4);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::optional<uint64_t> dirty_or_writeback_pages(int fd) {
  struct CachestatRange {
    uint64_t off, len;
  } range{0, 0};  // len 0: to end of file
  struct Cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } cs{};
  constexpr long kCachestatSyscall = 451;  // the same number on every architecture
  if (::syscall(kCachestatSyscall, fd, &range, &cs, 0) != 0) return std::nullopt;
  return cs.nr_dirty + cs.nr_writeback;
}

}  // namespace minivmm::storage::test
