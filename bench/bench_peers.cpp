#include "bench/bench_peers.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "common/error.h"
#include "common/unique_fd.h"

namespace minivmm::bench {
namespace {

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  ::pclose(f);
  return out;
}

double json_number_after(const std::string& s, size_t from, const std::string& key) {
  const auto k = s.find(key, from);
  if (k == std::string::npos) return 0;
  const auto colon = s.find(':', k + key.size());
  return std::stod(s.substr(colon + 1));
}

double rusage_cpu_seconds(int who) {
  rusage u{};
  if (::getrusage(who, &u) != 0) return 0;
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string cpu_cell(const Result& r) {
  if (r.cpu_seconds <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", r.cpu_us_per_io());
  return buf;
}

// The run with the median IOPS (the lower middle one for an even count).
Result median_by_iops(std::vector<Result> runs) {
  if (runs.empty()) throw Error("median of no runs");
  std::sort(runs.begin(), runs.end(),
            [](const Result& a, const Result& b) { return a.iops() < b.iops(); });
  return runs[(runs.size() - 1) / 2];
}

std::string ratio(double ours, std::optional<double> peer) {
  if (!peer || *peer <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", ours / *peer);
  return buf;
}

}  // namespace

std::vector<Case> standard_cases(unsigned flush_every) {
  return {{"write QD1", true, 1, 0},
          {"write QD32", true, 32, 0},
          {"read QD1", false, 1, 0},
          {"read QD32", false, 32, 0},
          {"write+flush/" + std::to_string(flush_every) + " QD1", true, 1, flush_every}};
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

void create_image(const std::string& file, uint64_t size) {
  UniqueFd fd(::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd) throw sys_error("create " + file);
  std::vector<uint8_t> chunk(1 << 20);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i * 31 + 7);
  for (uint64_t off = 0; off < size; off += chunk.size()) {
    if (::pwrite(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) {
      throw sys_error("fill " + file);
    }
  }
  if (::fsync(fd.get()) != 0) throw sys_error("fsync " + file);
}

void warm_cache(const std::string& file, uint64_t size) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open " + file);
  if (::fdatasync(fd.get()) != 0) throw sys_error("fdatasync " + file);
  std::vector<uint8_t> chunk(1 << 20);
  for (uint64_t off = 0; off < size; off += chunk.size()) {
    if (::pread(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) {
      throw sys_error("read " + file);
    }
  }
}

double process_cpu_seconds() { return rusage_cpu_seconds(RUSAGE_SELF); }

double thread_cpu_seconds() {
  timespec t{};
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return 0;
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

std::optional<Result> run_qemu_img(const std::string& file, storage::CacheMode mode, const Case& c,
                                   uint64_t count) {
  count = std::max<uint64_t>(count, 1);
  const std::string cmd =
      "qemu-img bench -f raw -t " + std::string(storage::to_string(mode)) + " -i io_uring -c " +
      std::to_string(count) + " -d " + std::to_string(c.depth) + " -s 4096 -S " +
      std::to_string(kStep) + (c.write ? " -w" : "") +
      (c.flush_every ? " --flush-interval=" + std::to_string(c.flush_every) : "") + " " + file +
      " 2>&1";
  const double cpu_before = rusage_cpu_seconds(RUSAGE_CHILDREN);
  const std::string out = capture(cmd);
  const auto at = out.find("Run completed in ");
  if (at == std::string::npos) {
    spdlog::warn("qemu-img bench gave no result: {}", out);
    return std::nullopt;
  }
  Result r;
  r.ops = count;
  r.seconds = std::stod(out.substr(at + 17));
  r.cpu_seconds = rusage_cpu_seconds(RUSAGE_CHILDREN) - cpu_before;
  return r.seconds > 0 ? std::optional<Result>(r) : std::nullopt;
}

Result run_fio(const std::string& file, uint64_t size, double seconds, const Case& c, bool direct) {
  const std::string cmd =
      "fio --name=ceiling --filename=" + file +
      " --ioengine=io_uring --bs=4k --rw=" + (c.write ? "randwrite" : "randread") +
      " --iodepth=" + std::to_string(c.depth) + " --direct=" + (direct ? "1" : "0") +
      " --runtime=" + std::to_string(seconds) + " --time_based --size=" + std::to_string(size) +
      (c.flush_every ? " --fdatasync=" + std::to_string(c.flush_every) : "") +
      " --output-format=json 2>/dev/null";
  const std::string out = capture(cmd);
  Result r;
  const auto sect = out.find(c.write ? "\"write\" :" : "\"read\" :");
  if (sect == std::string::npos) return r;
  const auto clat = out.find("\"clat_ns\"", sect);
  r.seconds = seconds;
  r.ops = static_cast<uint64_t>(json_number_after(out, sect, "\"iops\"") * seconds);
  r.p50_us = json_number_after(out, clat, "\"50.000000\"") / 1000;
  r.p99_us = json_number_after(out, clat, "\"99.000000\"") / 1000;
  // fio's job CPU, in percent of its run time.
  r.cpu_seconds =
      (json_number_after(out, 0, "\"usr_cpu\"") + json_number_after(out, 0, "\"sys_cpu\"")) / 100 *
      seconds;
  return r;
}

Row run_row(const std::string& file, uint64_t size, storage::CacheMode mode, const Case& c,
            unsigned rounds, bool peers, const std::function<Result()>& run_ours) {
  std::vector<Result> ours, qemu;
  for (unsigned i = 0; i < rounds; ++i) {
    warm_cache(file, size);
    ours.push_back(run_ours());
    if (!peers) continue;
    warm_cache(file, size);
    if (auto q = run_qemu_img(file, mode, c, ours.back().ops)) qemu.push_back(*q);
  }
  Row row{median_by_iops(std::move(ours)), std::nullopt};
  if (!qemu.empty()) row.qemu = median_by_iops(std::move(qemu));
  return row;
}

void print_table_header(bool with_fio_column) {
  std::printf(
      "| who / mode           | test               |      IOPS |  p50 (us) |  p99 (us) "
      "| qemu-img IOPS | vs qemu |%s CPU us/IO | qemu-img CPU us/IO |\n",
      with_fio_column ? " vs fio |" : "");
  std::printf(
      "|----------------------|--------------------|-----------|-----------|-----------"
      "|---------------|---------|%s------------|--------------------|\n",
      with_fio_column ? "--------|" : "");
  std::fflush(stdout);
}

void print_row(const std::string& who, const Case& c, const Result& r,
               const std::optional<Result>& qemu, std::optional<double> fio_iops,
               bool with_fio_column) {
  const std::optional<double> qemu_iops = qemu ? std::optional<double>(qemu->iops()) : std::nullopt;
  const std::string qemu_cell = qemu ? std::to_string(static_cast<long>(*qemu_iops)) : "-";
  std::printf("| %-20s | %-18s | %9.0f | %9.1f | %9.1f | %13s | %7s |", who.c_str(), c.name.c_str(),
              r.iops(), r.p50_us, r.p99_us, qemu_cell.c_str(), ratio(r.iops(), qemu_iops).c_str());
  if (with_fio_column) std::printf(" %6s |", ratio(r.iops(), fio_iops).c_str());
  std::printf(" %10s | %18s |\n", cpu_cell(r).c_str(), qemu ? cpu_cell(*qemu).c_str() : "-");
  std::fflush(stdout);
}

}  // namespace minivmm::bench
