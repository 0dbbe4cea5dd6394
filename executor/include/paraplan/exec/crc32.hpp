#pragma once
// CRC-32 as zlib, PNG and gzip compute it (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and
// final XOR 0xFFFFFFFF; check value of "123456789" = 0xCBF43926, Williams 1993 "A Painless Guide to
// CRC Error Detection Algorithms" §17 and the reveng catalogue's CRC-32/ISO-HDLC). No LibTorch.
#include <cstddef>
#include <cstdint>
#include <string>

namespace paraplan::exec {

// The CRC of `n` bytes, continuing from `crc` (0 to start), as zlib's crc32(crc, data, n).
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);
// The CRC of a whole file; FormatError naming the file when it cannot be read.
uint32_t file_crc32(const std::string& path);
std::string crc32_hex(uint32_t crc);  // 8 lower-case hex digits

}  // namespace paraplan::exec
