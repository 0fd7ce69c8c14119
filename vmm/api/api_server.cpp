#include "vmm/api/api_server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "common/error.h"
#include "vmm/api/http_request.h"
#include "vmm/api/router.h"
#include "vmm/host/seccomp_filter.h"

namespace minivmm::api {
namespace {

using Clock = std::chrono::steady_clock;

// One client: what it sent so far, then the response going out.
struct Connection {
  UniqueFd fd;
  Clock::time_point deadline;
  std::string in;
  std::string out;  // non-empty once the request is answered
  size_t sent = 0;
  bool draining = false;  // answered and shut for writing: discarding input until EOF
};

// How long a connection's input is drained after its response: a client
// still sending (a body refused with 413) must read the response before
// the close, or the close resets the connection (unread data) and the
// response is lost.
constexpr std::chrono::seconds kDrainTime{2};

class Connections {
 public:
  Connections(int epoll_fd, VmControl& vm) : epoll_(epoll_fd), vm_(vm) {}

  void accept_all(int listener) {
    for (;;) {
      UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;  // EAGAIN: none left; anything else: the client's loss
      // Past twice the limit, not even a refusal: closed at once.
      if (conns_.size() >= 2 * kMaxConnections) continue;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd.get();
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) continue;
      const int key = fd.get();
      Connection& c = conns_[key];
      c = Connection{std::move(fd), Clock::now() + kConnectionTimeout, {}, {}, 0};
      if (conns_.size() > kMaxConnections) {
        // Over the limit: answered at once, then drained like any answer,
        // so the client reads the refusal rather than a reset.
        answer(c, fault(503, "too many API connections; retry"));
        send_response(c);
        if (done(c)) conns_.erase(key);
      }
    }
  }

  void on_event(int fd, uint32_t events) {
    const auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Connection& c = it->second;
    if (c.draining) {
      drain(c);
    } else {
      if (c.out.empty() && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) read_request(c);
      if (!c.out.empty()) send_response(c);
    }
    if (done(c)) conns_.erase(it);
  }

  // Closes connections past their deadline (a 408 first when nothing was
  // answered); returns how long until the next deadline, in ms (-1: none).
  int expire() {
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto it = conns_.begin(); it != conns_.end();) {
      Connection& c = it->second;
      if (c.deadline <= now) {
        if (c.out.empty() && !c.draining) {
          const std::string late = serialize(fault(408, "request not received in time"));
          [[maybe_unused]] const ssize_t n = ::write(c.fd.get(), late.data(), late.size());
        }
        it = conns_.erase(it);
        continue;
      }
      next = std::min(next, c.deadline);
      ++it;
    }
    if (next == Clock::time_point::max()) return -1;
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1);
  }

 private:
  static bool done(const Connection& c) { return !c.fd; }

  void read_request(Connection& c) {
    char buf[4096];
    bool ended = false;  // the client sent all it will send
    for (;;) {
      const size_t room = kMaxRequestBytes - std::min(c.in.size(), kMaxRequestBytes);
      if (room == 0) break;  // full: the parser says why
      const ssize_t n = ::read(c.fd.get(), buf, std::min(sizeof buf, room));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n < 0) {
        c.fd.reset();
        return;
      }
      if (n == 0) {
        ended = true;
        break;
      }
      c.in.append(buf, static_cast<size_t>(n));
    }
    const ParseResult parsed = parse_http_request(c.in);
    switch (parsed.status) {
      case ParseResult::Status::kIncomplete:
        if (ended) c.fd.reset();  // a partial request nobody will finish
        return;
      case ParseResult::Status::kError:
        answer(c, fault(parsed.error.status, parsed.error.message));
        return;
      case ParseResult::Status::kComplete: answer(c, handle(parsed.request)); return;
    }
  }

  HttpResponse handle(const HttpRequest& req) {
    try {
      return handle_request(req, vm_);
    } catch (const std::exception& e) {
      spdlog::error("API {} {}: {}", req.method, req.target, e.what());
      return fault(500, std::string("internal error: ") + e.what());
    }
  }

  void answer(Connection& c, const HttpResponse& response) {
    c.out = serialize(response);
    c.deadline = Clock::now() + kConnectionTimeout;  // for a slow reader
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = c.fd.get();
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd.get(), &ev);
  }

  void send_response(Connection& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = ::write(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT brings us back
      if (n <= 0) {                          // the client went away (EPIPE)
        c.fd.reset();
        return;
      }
      c.sent += static_cast<size_t>(n);
    }
    // Sent: the client sees the end of the response (EOF) and closes; its
    // unread input is discarded meanwhile (kDrainTime).
    ::shutdown(c.fd.get(), SHUT_WR);
    c.draining = true;
    c.deadline = Clock::now() + kDrainTime;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = c.fd.get();
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd.get(), &ev);
    drain(c);
  }

  static void drain(Connection& c) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n > 0) continue;
      c.fd.reset();  // EOF or an error: done
      return;
    }
  }

  int epoll_;
  VmControl& vm_;
  std::map<int, Connection> conns_;
};

void add_to_epoll(int epoll_fd, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) throw sys_error("epoll_ctl(ADD)");
}

}  // namespace

ApiServer::ApiServer(UniqueFd listener, std::string path, VmControl& vm, bool sandbox)
    : listener_(std::move(listener)),
      path_(std::move(path)),
      vm_(vm),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      quit_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!epoll_) throw sys_error("epoll_create1 for the API server");
  if (!quit_) throw sys_error("eventfd for the API server");
  add_to_epoll(epoll_.get(), listener_.get());
  add_to_epoll(epoll_.get(), quit_.get());
  thread_ = std::jthread([this, sandbox] { serve(sandbox); });
}

ApiServer::~ApiServer() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(quit_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void ApiServer::serve(bool sandbox) {
  pthread_setname_np(pthread_self(), "minivmm-api");
  try {
    if (sandbox) install_seccomp_filter(ThreadKind::kApi);
    spdlog::info("API server listening on {}", path_);
    Connections conns(epoll_.get(), vm_);
    for (bool quit = false; !quit;) {
      epoll_event events[32];
      const int n = ::epoll_wait(epoll_.get(), events, 32, conns.expire());
      if (n < 0 && errno != EINTR) throw sys_error("epoll_wait in the API server");
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == quit_.get()) quit = true;
        else if (fd == listener_.get()) conns.accept_all(fd);
        else conns.on_event(fd, events[i].events);
      }
    }
  } catch (const std::exception& e) {
    // The VM goes on without its API; the log says why.
    spdlog::error("API server stopped: {}", e.what());
  }
  ::unlink(path_.c_str());
}

}  // namespace minivmm::api
