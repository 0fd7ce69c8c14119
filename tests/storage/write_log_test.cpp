// The write log as written by a real Disk: the header, the order of guest and
// host records per cache mode, the data carried, and failure to log.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/error.h"
#include "mode_engine_param.h"
#include "storage/aligned_buffer.h"
#include "storage/write_log.h"
#include "storage/write_log_format.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using T = WriteLogType;
constexpr uint64_t kImageSize = 1 << 20;

struct Parsed {
  WriteLogFileHeader header{};
  std::string image_path;
  std::vector<WriteLogRecord> records;
  std::vector<std::vector<uint8_t>> data;  // per record
};

Parsed parse(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Parsed p;
  EXPECT_GE(blob.size(), sizeof p.header);
  std::memcpy(&p.header, blob.data(), sizeof p.header);
  size_t pos = sizeof p.header;
  p.image_path.assign(reinterpret_cast<const char*>(blob.data() + pos), p.header.image_path_len);
  pos += p.header.image_path_len;
  while (pos + sizeof(WriteLogRecord) <= blob.size()) {
    WriteLogRecord r;
    std::memcpy(&r, blob.data() + pos, sizeof r);
    pos += sizeof r;
    std::vector<uint8_t> d;
    if (r.flags & kWriteLogHasData) {
      d.assign(blob.begin() + static_cast<long>(pos),
               blob.begin() + static_cast<long>(pos + r.length));
      pos += r.length;
    }
    p.records.push_back(r);
    p.data.push_back(std::move(d));
  }
  EXPECT_EQ(pos, blob.size()) << "trailing bytes in the log";
  return p;
}

std::vector<T> types(const Parsed& p) {
  std::vector<T> out;
  for (const auto& r : p.records) out.push_back(static_cast<T>(r.type));
  return out;
}

class WriteLogDisk : public ::testing::TestWithParam<test::ModeEngine> {
 protected:
  void SetUp() override {
    SKIP_IF_NO_URING(GetParam().engine);
    image_ = dir_.file("disk.img");
    log_ = dir_.file("disk.wlog");
    test::make_image(image_, kImageSize);
    DiskOptions o;
    o.path = image_;
    o.cache = GetParam().mode;
    o.engine = GetParam().engine;
    o.write_log = log_;
    disk_ = Disk::open(o);  // the production wiring
    for (size_t i = 0; i < buf_.size(); ++i) buf_.data()[i] = static_cast<uint8_t>(i * 13 + 5);
  }

  test::TempDir dir_;
  std::string image_, log_;
  std::unique_ptr<Disk> disk_;
  AlignedBuffer buf_{4096, 4096};
};

TEST_P(WriteLogDisk, HeaderDescribesTheImage) {
  disk_.reset();
  const Parsed p = parse(log_);
  EXPECT_EQ(std::memcmp(p.header.magic, kWriteLogMagic, 8), 0);
  EXPECT_EQ(p.header.version, kWriteLogVersion);
  EXPECT_EQ(p.header.image_size, kImageSize);
  EXPECT_EQ(p.header.block_size, 512u);
  EXPECT_EQ(p.header.cache_mode, static_cast<uint32_t>(to_write_log_mode(GetParam().mode)));
  EXPECT_EQ(p.header.write_cache != 0, traits(GetParam().mode).write_cache);
  EXPECT_EQ(p.header.direct != 0, traits(GetParam().mode).direct);
  EXPECT_EQ(p.image_path, image_);
  EXPECT_TRUE(p.records.empty());
}

TEST_P(WriteLogDisk, WriteAndFlushAreLoggedInOrderWithTheirData) {
  ASSERT_EQ(test::run_write(*disk_, 8192, buf_.data(), 4096), 0);
  std::vector<uint8_t> back(4096);
  ASSERT_EQ(test::run_read(*disk_, 8192, back.data(), back.size()), 0);  // not logged
  ASSERT_EQ(test::run_flush(*disk_), 0);
  disk_.reset();
  const Parsed p = parse(log_);
  const CacheModeTraits t = traits(GetParam().mode);
  std::vector<T> want = {T::GuestSubmit, T::HostWriteIssued, T::HostWriteDone, T::GuestComplete,
                         T::GuestSubmit};
  if (t.flush_honoured) want.insert(want.end(), {T::HostFlushIssued, T::HostFlushDone});
  want.push_back(T::GuestFlushComplete);
  ASSERT_EQ(types(p), want);

  const std::vector<uint8_t> written(buf_.data(), buf_.data() + 4096);
  EXPECT_EQ(p.records[0].value, static_cast<int64_t>(WriteLogGuestOp::Write));
  EXPECT_EQ(p.records[0].offset, 8192u);
  EXPECT_EQ(p.data[0], written);  // what the guest asked for
  EXPECT_EQ(p.records[1].offset, 8192u);
  EXPECT_EQ(p.data[1], written);  // what reached the host
  // A lone write with the write cache off is durable by RWF_DSYNC.
  EXPECT_EQ((p.records[1].flags & kWriteLogDsync) != 0, !t.write_cache);
  EXPECT_EQ(p.records[2].id, p.records[1].id);
  EXPECT_EQ(p.records[2].value, 4096);
  EXPECT_EQ(p.records[3].id, p.records[0].id);
  EXPECT_EQ(p.records[3].value, 0);
  EXPECT_EQ(p.records[4].value, static_cast<int64_t>(WriteLogGuestOp::Flush));
  EXPECT_EQ(p.records.back().id, p.records[4].id);
}

TEST_P(WriteLogDisk, WriteCacheSwitchesAndZeroingAreLogged) {
  const bool initial = traits(GetParam().mode).write_cache;
  disk_->set_write_cache(!initial);
  DiskRequest z;
  z.op = RequestType::WriteZeroes;
  z.offset = 4096;
  z.length = 4096;
  ASSERT_EQ(test::run_request(*disk_, std::move(z)), 0);
  disk_.reset();
  const Parsed p = parse(log_);
  ASSERT_GE(p.records.size(), 4u);
  EXPECT_EQ(static_cast<T>(p.records[0].type), T::SetWriteCache);
  EXPECT_EQ(p.records[0].value, initial ? 0 : 1);
  EXPECT_EQ(static_cast<T>(p.records[1].type), T::GuestSubmit);
  EXPECT_EQ(p.records[1].value, static_cast<int64_t>(WriteLogGuestOp::WriteZeroes));
  EXPECT_EQ(static_cast<T>(p.records[2].type), T::HostFallocIssued);
  EXPECT_EQ(p.records[2].offset, 4096u);
  EXPECT_EQ(p.records[2].length, 4096u);
  EXPECT_EQ(static_cast<T>(p.records.back().type), T::GuestComplete);
  // With the write cache now off (and flushes honoured), fallocate, which has
  // no DSYNC flag, must be followed by an fdatasync before completion.
  const bool durable = initial && traits(GetParam().mode).flush_honoured;
  const auto t = types(p);
  EXPECT_EQ(std::count(t.begin(), t.end(), T::HostFlushDone), durable ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(AllModes, WriteLogDisk,
                         ::testing::ValuesIn(test::all_modes_both_engines()),
                         test::mode_engine_name);

TEST(WriteLog, UnwritableLogPathIsAnErrorNamingIt) {
  test::TempDir dir;
  const std::string image = dir.file("disk.img");
  test::make_image(image, kImageSize);
  DiskOptions o;
  o.path = image;
  o.write_log = dir.file("no/such/dir/disk.wlog");
  try {
    Disk::open(o);
    FAIL() << "opened with an uncreatable write log";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(o.write_log), std::string::npos) << e.what();
  }
}

TEST(WriteLog, FailedAppendThrowsInsteadOfTruncatingTheLog) {
  // /dev/full accepts the open and fails every write with ENOSPC.
  try {
    WriteLog::create("/dev/full", {"/img", kImageSize, 512, CacheMode::Writeback});
    FAIL() << "header write to /dev/full succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minivmm::storage
