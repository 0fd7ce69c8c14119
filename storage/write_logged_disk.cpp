#include "storage/write_logged_disk.h"

#include <cerrno>
#include <exception>

#include <spdlog/spdlog.h>

#include "storage/image_disk.h"
#include "storage/write_log_engine.h"

namespace minivmm::storage {
namespace {

WriteLogGuestOp guest_op(RequestType op) {
  switch (op) {
    case RequestType::Write: return WriteLogGuestOp::Write;
    case RequestType::Flush: return WriteLogGuestOp::Flush;
    case RequestType::Discard: return WriteLogGuestOp::Discard;
    case RequestType::WriteZeroes: return WriteLogGuestOp::WriteZeroes;
    case RequestType::Read: break;
  }
  return WriteLogGuestOp::Write;  // not reached: reads are not logged
}

class WriteLoggedDisk final : public Disk {
 public:
  WriteLoggedDisk(std::shared_ptr<WriteLog> log, std::unique_ptr<Disk> inner)
      : log_(std::move(log)), inner_(std::move(inner)) {}

  std::string path() const override { return inner_->path(); }
  uint64_t size_bytes() const override { return inner_->size_bytes(); }
  uint32_t logical_block_size() const override { return inner_->logical_block_size(); }
  bool read_only() const override { return inner_->read_only(); }
  CacheMode configured_mode() const override { return inner_->configured_mode(); }
  bool write_cache_enabled() const override { return inner_->write_cache_enabled(); }

  void set_write_cache(bool enabled) override {
    WriteLogRecord r{};
    r.type = static_cast<uint32_t>(WriteLogType::SetWriteCache);
    r.value = enabled ? 1 : 0;
    log_->append(r);
    inner_->set_write_cache(enabled);
  }

  void submit(DiskRequest request) override {
    if (request.op == RequestType::Read) {
      inner_->submit(std::move(request));
      return;
    }
    const uint64_t id = next_id_++;
    WriteLogRecord r{};
    r.type = static_cast<uint32_t>(WriteLogType::GuestSubmit);
    r.id = id;
    r.offset = request.offset;
    r.length = request.length;
    r.value = static_cast<int64_t>(guest_op(request.op));
    if (request.op == RequestType::WriteZeroes && request.unmap) r.flags = kWriteLogUnmap;
    if (request.op == RequestType::Write) {
      log_->append(r, request.iov);  // the guest's bytes, straight from its buffers
    } else {
      log_->append(r);
    }
    const auto done_type = request.op == RequestType::Flush ? WriteLogType::GuestFlushComplete
                                                            : WriteLogType::GuestComplete;
    // The log (a member declared before inner_) outlives every callback:
    // inner_'s destructor drains before log_ goes.
    request.done = [log = log_.get(), id, done_type, done = std::move(request.done)](int result) {
      WriteLogRecord c{};
      c.type = static_cast<uint32_t>(done_type);
      c.id = id;
      c.value = result;
      try {
        log->append(c);  // before the guest can see it
      } catch (const std::exception& e) {
        // The recording is incomplete: the guest must not take this as a
        // clean completion.
        spdlog::error("storage: write log append failed: {}", e.what());
        if (result == 0) result = -EIO;
      }
      if (done) done(result);
    };
    inner_->submit(std::move(request));
  }

  void kick() override { inner_->kick(); }
  int completion_fd() const override { return inner_->completion_fd(); }
  bool completions_ready() const override { return inner_->completions_ready(); }
  void process_completions() override { inner_->process_completions(); }
  void drain() override { inner_->drain(); }
  size_t in_flight() const override { return inner_->in_flight(); }
  DiskStats stats() const override { return inner_->stats(); }

 private:
  std::shared_ptr<WriteLog> log_;
  std::unique_ptr<Disk> inner_;
  uint64_t next_id_ = 1;
};

}  // namespace

std::unique_ptr<Disk> make_write_logged_disk(std::shared_ptr<WriteLog> log,
                                             std::unique_ptr<Disk> inner) {
  return std::make_unique<WriteLoggedDisk>(std::move(log), std::move(inner));
}

std::unique_ptr<Disk> open_write_logged_disk(const DiskOptions& options, ImageFile image,
                                             std::unique_ptr<IoEngine> engine) {
  auto log = WriteLog::create(options.write_log, {options.path, image.size_bytes,
                                                  image.logical_block_size, options.cache});
  spdlog::info("storage: {}: logging writes and flushes to {}", options.path, options.write_log);
  auto logged_engine = std::make_unique<WriteLogEngine>(log, std::move(engine));
  auto disk = std::make_unique<ImageDisk>(options, std::move(image), std::move(logged_engine));
  return make_write_logged_disk(std::move(log), std::move(disk));
}

}  // namespace minivmm::storage
