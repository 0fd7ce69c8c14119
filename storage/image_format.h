// What a disk image's first bytes say it is. minivmm serves raw images; a
// file that starts with another format's header must not be served as raw
// by guessing: the guest's first write would land on that header (and a
// guest could forge one on a raw disk to make a later probe misread it),
// so `format = "auto"` refuses such a file and `format = "raw"` is the
// user's explicit word that the bytes are the guest's.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace minivmm::storage {

enum class ImageFormat { Auto, Raw };

std::optional<ImageFormat> parse_image_format(std::string_view text);
const char* to_string(ImageFormat format);
inline constexpr const char* kImageFormats = "auto, raw";

// The name of the image format whose magic `head` (the file's first bytes)
// starts with: "qcow2" (also version 1), "qed", "vmdk", "vhdx", "vdi",
// "luks"; nullopt when none matches.
std::optional<std::string> detect_foreign_format(std::string_view head);

// Reads the first 4 KiB of the open image `fd` (O_DIRECT or not). Auto: throws
// minivmm::Error naming `path` and the format found when it is not raw.
// Raw: logs a warning instead, and the image is served as raw.
void check_image_format(int fd, const std::string& path, ImageFormat format);

}  // namespace minivmm::storage
