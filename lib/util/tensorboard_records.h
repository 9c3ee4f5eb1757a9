// TensorBoard event files without TensorFlow or protobuf: the few Event messages a training run
// writes, encoded by hand (tensorflow/core/util/event.proto, summary.proto), and the TFRecord
// framing around each of them. An event file is a sequence of records; the first holds
// file_version "brain.Event:2", the others one step's scalars each. Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cca::tensorboard {

inline constexpr std::string_view kFileVersion = "brain.Event:2";

// One Summary.Value: TensorBoard stores simple_value as a float32.
struct Scalar {
  std::string tag;
  double value = 0;
};

// Event{wall_time, file_version: "brain.Event:2"}: the first record of every event file.
std::string file_version_event(double wall_time);
// Event{wall_time, step, summary{value{tag, simple_value}...}}.
std::string scalars_event(double wall_time, int64_t step, const std::vector<Scalar>& scalars);
// Event{wall_time, step, session_log{status: START}}: tells a running TensorBoard that the run
// restarted, so it forgets what it already showed for steps >= `step` (its purge of orphaned data).
std::string session_start_event(double wall_time, int64_t step);

// One TFRecord: the data's length (uint64), the masked CRC-32C of those 8 bytes, the data, and
// the masked CRC-32C of the data; integers little-endian.
std::string frame_record(std::string_view data);

struct Record {
  std::string_view data;    // the Event message
  std::string_view framed;  // the whole record, framing included
};

// The records at the start of an event file's bytes, up to the first one that is incomplete or
// fails a checksum (a write cut short, or damage): readers stop there too.
struct RecordScan {
  std::vector<Record> records;  // views into the scanned bytes
  uint64_t valid_bytes = 0;     // the bytes those records span
};
RecordScan scan_records(std::string_view bytes);

// What rewriting a file on resume needs to know of an Event: its step, whether it is the
// file_version header, and its summary's tags. nullopt when the bytes are not a well-formed
// protobuf message.
struct EventHeader {
  int64_t step = 0;
  bool file_version = false;
  std::vector<std::string> tags;
};
std::optional<EventHeader> read_event_header(std::string_view event);

}  // namespace cca::tensorboard
