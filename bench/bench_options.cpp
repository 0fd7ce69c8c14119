#include "bench/bench_options.h"

#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace minivmm::bench {

namespace {
std::string usage(bool allow_requests) {
  return std::string(
             "--file PATH --size-mib N --seconds S --rounds N --flush-every N --no-peers --mode M "
             "--engine sync|uring") +
         (allow_requests ? " --requests N --driver-poll --same-thread --poll-max-us N "
                           "--driver-halt-poll-us N"
                         : "");
}
}  // namespace

Options parse_options(int argc, char** argv, const std::string& default_file, bool allow_requests) {
  Options o;
  o.file = default_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--file") o.file = next();
    else if (a == "--size-mib") o.size = std::stoull(next()) << 20;
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--rounds") o.rounds = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--flush-every") o.flush_every = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--no-peers") o.peers = false;
    else if (a == "--mode") o.only_mode = next();
    else if (a == "--requests" && allow_requests) o.requests = std::stoull(next());
    else if (a == "--driver-poll" && allow_requests) o.driver_poll = true;
    else if (a == "--same-thread" && allow_requests) o.same_thread = true;
    else if (a == "--poll-max-us" && allow_requests)
      o.poll_max_us = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--driver-halt-poll-us" && allow_requests)
      o.driver_halt_poll_us = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--engine") {
      const std::string e = next();
      o.engine = e == "sync"    ? storage::IoEngineKind::Sync
                 : e == "uring" ? storage::IoEngineKind::IoUring
                                : storage::IoEngineKind::Auto;
    } else if (a == "--help" || a == "-h") {
      std::printf("options: %s\n(bench/README.md describes each)\n", usage(allow_requests).c_str());
      std::exit(0);
    } else {
      throw Error("unknown option " + a + " (use " + usage(allow_requests) + ")");
    }
  }
  if (o.rounds == 0) throw Error("--rounds must be at least 1");
  return o;
}

}  // namespace minivmm::bench
