#include "storage/image_format.h"

#include <unistd.h>

#include <array>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "storage/aligned_buffer.h"

namespace minivmm::storage {
namespace {

struct Magic {
  const char* format;
  size_t offset;
  std::string_view bytes;
};

// Each format's signature, from its specification: qcow/qcow2 "QFI\xfb"
// (QEMU docs/interop/qcow2.txt), QED "QED\0", VMDK sparse extent "KDMV",
// VHDX "vhdxfile", VDI's signature 0xbeda107f at byte 64 (little-endian),
// LUKS "LUKS\xba\xbe".
constexpr std::array<Magic, 6> kMagics{{
    {"qcow2", 0, std::string_view("QFI\xfb", 4)},
    {"qed", 0, std::string_view("QED\0", 4)},
    {"vmdk", 0, std::string_view("KDMV", 4)},
    {"vhdx", 0, std::string_view("vhdxfile", 8)},
    {"vdi", 64, std::string_view("\x7f\x10\xda\xbe", 4)},
    {"luks", 0, std::string_view("LUKS\xba\xbe", 6)},
}};

// One aligned read serves O_DIRECT whatever the logical block size up to 4 KiB.
constexpr size_t kProbeBytes = 4096;

}  // namespace

std::optional<ImageFormat> parse_image_format(std::string_view text) {
  if (text == "auto") return ImageFormat::Auto;
  if (text == "raw") return ImageFormat::Raw;
  return std::nullopt;
}

const char* to_string(ImageFormat format) { return format == ImageFormat::Raw ? "raw" : "auto"; }

std::optional<std::string> detect_foreign_format(std::string_view head) {
  for (const Magic& m : kMagics) {
    if (head.size() >= m.offset + m.bytes.size() &&
        head.substr(m.offset, m.bytes.size()) == m.bytes) {
      return m.format;
    }
  }
  return std::nullopt;
}

void check_image_format(int fd, const std::string& path, ImageFormat format) {
  AlignedBuffer head(kProbeBytes, kProbeBytes);
  const ssize_t n = ::pread(fd, head.data(), kProbeBytes, 0);
  if (n < 0) {
    throw sys_error("disk image '" + path + "': cannot read its first 4 KiB to check its format");
  }
  const auto found = detect_foreign_format(
      std::string_view(reinterpret_cast<const char*>(head.data()), static_cast<size_t>(n)));
  if (!found) return;
  if (format == ImageFormat::Raw) {
    spdlog::warn(
        "storage: disk image '{}' starts with a {} header; serving it as raw "
        "(format = \"raw\"), so the guest sees that header as data",
        path, *found);
    return;
  }
  throw Error("disk image '" + path + "' starts with a " + *found +
              " header; minivmm serves raw images only, and serving it as raw would let the "
              "guest overwrite that header. Convert it (qemu-img convert -O raw IN OUT), or set "
              "format = \"raw\" if these bytes really are the guest's disk");
}

}  // namespace minivmm::storage
