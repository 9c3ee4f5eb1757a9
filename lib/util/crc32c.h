// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing and so of
// TensorBoard event files. Debian 12 packages no C/C++ CRC-32C library, so this is a small
// table-driven implementation; event records are short, and a byte at a time is fast enough.
#pragma once

#include <cstdint>
#include <string_view>

namespace cca {

// CRC-32C of `bytes`; pass an earlier result as `crc` to continue over data split into pieces.
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);

// TFRecord's masked form: rotated right by 15 bits plus a constant, so that a CRC computed over
// data that itself holds CRCs does not degenerate.
uint32_t mask_crc32c(uint32_t crc);

}  // namespace cca
