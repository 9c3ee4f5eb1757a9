#include "util/tensorboard_records.h"

#include <cstring>

#include "util/crc32c.h"

namespace cca::tensorboard {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

// Field numbers of event.proto and summary.proto.
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5,
                   kEventSessionLog = 7;
constexpr uint32_t kSummaryValue = 1, kValueTag = 1, kValueSimpleValue = 2;
constexpr uint32_t kSessionLogStatus = 1, kSessionStart = 1;

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_little_endian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void put_key(std::string& out, uint32_t field, uint32_t wire_type) {
  put_varint(out, (uint64_t{field} << 3) | wire_type);
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_double(std::string& out, uint32_t field, double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kFixed64);
  put_little_endian(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kFixed32);
  put_little_endian(out, bits, 4);
}

// wall_time and step, the fields every Event starts with. proto3 leaves out a zero step.
std::string event_prefix(double wall_time, int64_t step) {
  std::string out;
  put_double(out, kEventWallTime, wall_time);
  if (step != 0) {
    put_key(out, kEventStep, kVarint);
    put_varint(out, static_cast<uint64_t>(step));  // int64: two's complement, as protobuf does
  }
  return out;
}

uint64_t read_little_endian(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return value;
}

bool read_varint(std::string_view bytes, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && pos < bytes.size(); shift += 7) {
    const auto byte = static_cast<unsigned char>(bytes[pos++]);
    value |= uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Calls visit(field, wire_type, varint, bytes) for each field of a protobuf message in turn:
// `varint` holds a varint field's value, `bytes` a length-delimited field's contents (fixed-width
// fields are skipped). False when the message is malformed or `visit` returns false.
template <class Visit>
bool for_each_field(std::string_view message, Visit&& visit) {
  size_t pos = 0;
  while (pos < message.size()) {
    uint64_t key = 0, varint = 0, length = 0;
    if (!read_varint(message, pos, key)) return false;
    const auto field = static_cast<uint32_t>(key >> 3);
    const auto wire_type = static_cast<uint32_t>(key & 7);
    std::string_view bytes;
    if (field == 0) return false;
    if (wire_type == kVarint) {
      if (!read_varint(message, pos, varint)) return false;
    } else if (wire_type == kFixed64 || wire_type == kFixed32) {
      length = wire_type == kFixed64 ? 8 : 4;
    } else if (wire_type == kLengthDelimited) {
      if (!read_varint(message, pos, length)) return false;
    } else {
      return false;  // groups (3, 4) are not used by these messages
    }
    if (length > message.size() - pos) return false;
    if (wire_type == kLengthDelimited) bytes = message.substr(pos, static_cast<size_t>(length));
    pos += static_cast<size_t>(length);
    if (!visit(field, wire_type, varint, bytes)) return false;
  }
  return true;
}

// The tags of a Summary's values, appended to `tags`.
bool read_summary_tags(std::string_view summary, std::vector<std::string>& tags) {
  return for_each_field(
      summary, [&](uint32_t field, uint32_t wire_type, uint64_t, std::string_view value) {
        if (field != kSummaryValue || wire_type != kLengthDelimited) return true;
        return for_each_field(value, [&](uint32_t value_field, uint32_t value_wire_type, uint64_t,
                                         std::string_view bytes) {
          if (value_field == kValueTag && value_wire_type == kLengthDelimited)
            tags.emplace_back(bytes);
          return true;
        });
      });
}

}  // namespace

std::string file_version_event(double wall_time) {
  std::string out = event_prefix(wall_time, 0);
  put_bytes(out, kEventFileVersion, kFileVersion);
  return out;
}

std::string scalars_event(double wall_time, int64_t step, const std::vector<Scalar>& scalars) {
  std::string summary;
  for (const Scalar& scalar : scalars) {
    std::string value;
    put_bytes(value, kValueTag, scalar.tag);
    put_float(value, kValueSimpleValue, static_cast<float>(scalar.value));
    put_bytes(summary, kSummaryValue, value);
  }
  std::string out = event_prefix(wall_time, step);
  put_bytes(out, kEventSummary, summary);
  return out;
}

std::string session_start_event(double wall_time, int64_t step) {
  std::string session_log;
  put_key(session_log, kSessionLogStatus, kVarint);
  put_varint(session_log, kSessionStart);
  std::string out = event_prefix(wall_time, step);
  put_bytes(out, kEventSessionLog, session_log);
  return out;
}

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_little_endian(out, data.size(), 8);
  put_little_endian(out, mask_crc32c(crc32c(out)), 4);
  out.append(data);
  put_little_endian(out, mask_crc32c(crc32c(data)), 4);
  return out;
}

RecordScan scan_records(std::string_view bytes) {
  RecordScan scan;
  size_t pos = 0;
  while (bytes.size() - pos >= 12) {
    const std::string_view length_bytes = bytes.substr(pos, 8);
    const uint64_t length = read_little_endian(length_bytes.data(), 8);
    if (read_little_endian(bytes.data() + pos + 8, 4) != mask_crc32c(crc32c(length_bytes))) break;
    const uint64_t after_header = bytes.size() - pos - 12;
    if (after_header < 4 || length > after_header - 4) break;  // cut short
    const std::string_view data = bytes.substr(pos + 12, static_cast<size_t>(length));
    const size_t end = pos + 16 + static_cast<size_t>(length);
    if (read_little_endian(bytes.data() + end - 4, 4) != mask_crc32c(crc32c(data))) break;
    scan.records.push_back({data, bytes.substr(pos, end - pos)});
    pos = end;
  }
  scan.valid_bytes = pos;
  return scan;
}

std::optional<EventHeader> read_event_header(std::string_view event) {
  EventHeader header;
  const bool well_formed = for_each_field(
      event, [&](uint32_t field, uint32_t wire_type, uint64_t varint, std::string_view bytes) {
        if (field == kEventStep && wire_type == kVarint) {
          header.step = static_cast<int64_t>(varint);  // int64: two's complement
        } else if (field == kEventFileVersion && wire_type == kLengthDelimited) {
          header.file_version = true;
        } else if (field == kEventSummary && wire_type == kLengthDelimited) {
          return read_summary_tags(bytes, header.tags);
        }
        return true;
      });
  if (!well_formed) return std::nullopt;
  return header;
}

}  // namespace cca::tensorboard
