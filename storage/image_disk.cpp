#include "storage/image_disk.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "storage/iov_cursor.h"
#include "storage/open_disk.h"
#include "storage/request_checks.h"

namespace minivmm::storage {

ImageDisk::ImageDisk(const DiskOptions& options, ImageFile image, std::unique_ptr<IoEngine> engine)
    : image_(std::move(image)),
      engine_(std::move(engine)),
      mode_(options.cache),
      read_only_(options.read_only),
      write_cache_(traits(options.cache).write_cache) {}

ImageDisk::~ImageDisk() {
  // Bounce buffers and guest memory must outlive the kernel's use of them.
  try {
    drain();
  } catch (const std::exception& e) {
    spdlog::error("storage: draining disk at close failed: {}", e.what());
  }
}

bool ImageDisk::dsync_writes() const { return !write_cache_ && traits(mode_).flush_honoured; }

void ImageDisk::set_write_cache(bool enabled) {
  // writethrough <-> writeback and directsync <-> none: only per-write
  // durability changes; O_DIRECT stays as opened (contract, QEMU rules).
  write_cache_ = enabled;
}

std::vector<ImageDisk::Step> ImageDisk::plan(const DiskRequest& request, uint64_t length) const {
  using Op = DiskRequest::Op;
  if (request.op == Op::Flush) {
    // unsafe ignores flushes; a read-only disk has nothing of ours to flush.
    return {traits(mode_).flush_honoured && !read_only_ ? Step::Sync : Step::Nothing};
  }
  if (length == 0) return {Step::Nothing};
  switch (request.op) {
    case Op::Read: return {Step::Transfer};
    case Op::Write: return {Step::Transfer};  // RWF_DSYNC carries durability
    case Op::Discard:
    case Op::WriteZeroes: {
      const bool punch = request.op == Op::Discard || request.unmap;
      std::vector<Step> steps{punch ? Step::PunchHole : Step::ZeroRange};
      // fallocate has no DSYNC flag: follow it with fdatasync.
      if (dsync_writes()) steps.push_back(Step::Sync);
      return steps;
    }
    case Op::Flush: break;
  }
  return {Step::Nothing};
}

bool ImageDisk::needs_bounce(const DiskRequest& request) const {
  if (!traits(mode_).direct) return false;
  const uint64_t mem_align = image_.memory_alignment;
  const uint64_t block = image_.logical_block_size;
  return std::any_of(request.iov.begin(), request.iov.end(), [&](const iovec& v) {
    return reinterpret_cast<uintptr_t>(v.iov_base) % mem_align != 0 || v.iov_len % block != 0;
  });
}

void ImageDisk::submit(DiskRequest request) {
  const RequestLimits limits{image_.size_bytes, image_.logical_block_size, read_only_};
  if (const int err = check_request(request, limits); err != 0) {
    if (request.done) request.done(err);
    return;
  }
  bool overflow = false;
  const uint64_t length = request_length(request, overflow);
  auto p = std::make_unique<Pending>();
  p->steps = plan(request, length);
  p->length = length;
  p->request = std::move(request);
  const bool transfer = p->steps.front() == Step::Transfer;
  if (transfer && needs_bounce(p->request)) {
    const size_t align = std::max<size_t>({4096, image_.logical_block_size, image_.memory_alignment});
    p->bounce = AlignedBuffer(length, align);
    p->bounce_iov = {p->bounce.data(), length};
    if (p->request.op == DiskRequest::Op::Write) {
      copy_from_iov(p->request.iov, p->bounce.data(), length);
    }
  }
  const uint64_t id = next_id_++;
  Pending& ref = *p;
  requests_.emplace(id, std::move(p));
  issue(id, ref);
}

void ImageDisk::issue(uint64_t id, Pending& p) {
  IoOp op;
  op.fd = image_.fd.get();
  op.tag = id;
  op.offset = p.request.offset;
  op.length = p.length;
  switch (p.steps.front()) {
    case Step::Transfer:
      op.kind = p.request.op == DiskRequest::Op::Write ? IoOp::Kind::Write : IoOp::Kind::Read;
      op.iov = p.bounce.data() ? std::span<const iovec>(&p.bounce_iov, 1)
                               : std::span<const iovec>(p.request.iov);
      op.dsync = op.kind == IoOp::Kind::Write && dsync_writes();
      break;
    case Step::ZeroRange:
      op.kind = IoOp::Kind::Fallocate;
      op.fallocate_mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
      break;
    case Step::PunchHole:
      op.kind = IoOp::Kind::Fallocate;
      op.fallocate_mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      break;
    case Step::Allocate:
      op.kind = IoOp::Kind::Fallocate;
      op.fallocate_mode = FALLOC_FL_KEEP_SIZE;
      break;
    case Step::Sync: op.kind = IoOp::Kind::Fdatasync; break;
    case Step::Nothing: op.kind = IoOp::Kind::Noop; break;
  }
  engine_->prepare(op);
}

void ImageDisk::advance(uint64_t id, int64_t result, Finished& finished) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Pending& p = *it->second;
  const Step step = p.steps.front();
  if (result == -EOPNOTSUPP && !p.fell_back) {
    // Filesystems without ZERO_RANGE: punch, then allocate again, so the
    // range reads as zeroes and stays allocated (what QEMU's file-posix does).
    // Without PUNCH_HOLE for an unmapping write-zeroes: write zeroes instead.
    const bool zeroing = p.request.op == DiskRequest::Op::WriteZeroes;
    if (zeroing && step == Step::ZeroRange) {
      p.fell_back = true;
      p.steps.front() = Step::Allocate;
      p.steps.insert(p.steps.begin(), Step::PunchHole);
      issue(id, p);
      return;
    }
    if (zeroing && step == Step::PunchHole) {
      p.fell_back = true;
      p.steps.front() = Step::ZeroRange;
      issue(id, p);
      return;
    }
    // Discard is a hint (virtio 1.x 5.2.6): not supported means nothing to do.
    if (p.request.op == DiskRequest::Op::Discard) result = 0;
  }
  int status = 0;
  if (result < 0) {
    status = static_cast<int>(result);
  } else if (step == Step::Transfer && static_cast<uint64_t>(result) != p.length) {
    status = -EIO;
  }
  p.steps.erase(p.steps.begin());
  if (status == 0 && !p.steps.empty()) {
    issue(id, p);
    return;
  }
  if (status == 0 && step == Step::Transfer && p.bounce.data() &&
      p.request.op == DiskRequest::Op::Read) {
    copy_to_iov(p.request.iov, p.bounce.data(), p.length);
  }
  finished.emplace_back(std::move(p.request.done), status);
  requests_.erase(it);
}

void ImageDisk::process_completions() {
  for (;;) {
    completions_.clear();
    engine_->reap(completions_);
    if (completions_.empty()) return;
    Finished finished;
    for (const IoCompletion& c : completions_) advance(c.tag, c.result, finished);
    engine_->kick();  // follow-up steps prepared by advance()
    // Callbacks last: they may submit new requests to this disk.
    for (auto& [done, status] : finished) {
      if (done) done(status);
    }
  }
}

void ImageDisk::drain() {
  while (!requests_.empty()) {
    engine_->kick();
    engine_->wait();
    process_completions();
  }
}

namespace {

std::unique_ptr<Disk> make_image_disk(const DiskOptions& options, ImageFile image,
                                      std::unique_ptr<IoEngine> engine) {
  spdlog::info("storage: {} opened {} ({} bytes, block {} B, cache={}, engine={})", options.path,
               options.read_only ? "read-only" : "read-write", image.size_bytes,
               image.logical_block_size, to_string(options.cache), engine->name());
  return std::make_unique<ImageDisk>(options, std::move(image), std::move(engine));
}

}  // namespace

std::unique_ptr<Disk> open_disk_with_engine(const DiskOptions& options,
                                            std::unique_ptr<IoEngine> engine) {
  ImageFile image = open_image_file(options.path, options.read_only, traits(options.cache).direct);
  return make_image_disk(options, std::move(image), std::move(engine));
}

std::unique_ptr<Disk> Disk::open(const DiskOptions& options) {
  // The image is checked before an engine is chosen, so image errors come first.
  ImageFile image = open_image_file(options.path, options.read_only, traits(options.cache).direct);
  return make_image_disk(options, std::move(image), make_io_engine(options.engine));
}

}  // namespace minivmm::storage
