#include "vmm/api/api_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "vmm/config/config.h"
#include "vmm/loader/regular_file.h"

namespace minivmm::api {
namespace {

constexpr int kBacklog = 16;

sockaddr_un address_of(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {  // validate_config's limit, checked again
    throw ConfigError("API socket '" + path + "' is too long for a Unix socket path");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

ConfigError failed(const std::string& what) {
  const int err = errno;
  return ConfigError(what + ": " + std::strerror(err));
}

// A socket at `path` that nobody accepts on (connect: ECONNREFUSED) is a
// dead run's: removed. Anything else there is refused.
void remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw failed("cannot reach API socket '" + path + "'");
  }
  if (!S_ISSOCK(st.st_mode)) {
    throw ConfigError("API socket '" + path + "' is " + file_type_name(st.st_mode) +
                      ", not a socket: refusing to replace it");
  }
  const UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) throw failed("socket(AF_UNIX) for API socket '" + path + "'");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    throw ConfigError("API socket '" + path +
                      "' is in use: another process accepts connections on it");
  }
  if (errno != ECONNREFUSED) throw failed("cannot probe API socket '" + path + "'");
  if (::unlink(path.c_str()) != 0) throw failed("cannot remove stale API socket '" + path + "'");
}

}  // namespace

UniqueFd listen_api_socket(const std::string& path) {
  const sockaddr_un addr = address_of(path);
  remove_stale_socket(path, addr);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw failed("socket(AF_UNIX) for API socket '" + path + "'");
  // The socket file gets 0600 from the start: bind(2) creates it with the
  // umask applied, and no other thread creates files during set-up.
  const mode_t old_umask = ::umask(0177);
  const int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old_umask);
  if (rc != 0) throw failed("cannot create API socket '" + path + "'");
  if (::listen(fd.get(), kBacklog) != 0) {
    ::unlink(path.c_str());
    throw failed("listen on API socket '" + path + "'");
  }
  return fd;
}

}  // namespace minivmm::api
