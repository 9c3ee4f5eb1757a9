// TensorBoard event files: CRC-32C against published vectors, records byte for byte against the
// `tensorboard` package's own writer, the Event encoding decoded back by a small protobuf reader
// here, and the resume rewrite of a folder (tests/interop/test_tensorboard_events.py reads what
// cca-train writes with tensorboard and tbparse).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "testing/scratch_dir.h"
#include "util/crc32c.h"
#include "util/files.h"
#include "util/tensorboard_records.h"
#include "util/tensorboard_writer.h"

namespace cca {
namespace {

using namespace tensorboard;

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (const char c : bytes) {
    hex.push_back(digits[static_cast<unsigned char>(c) >> 4]);
    hex.push_back(digits[static_cast<unsigned char>(c) & 15]);
  }
  return hex;
}

TEST(Crc32c, MatchesPublishedVectors) {
  // The check value of the CRC catalogue, and RFC 3720 (iSCSI) appendix B.4.
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32c, ContinuesOverPieces) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= text.size(); split += 7) {
    EXPECT_EQ(crc32c(text.substr(split), crc32c(text.substr(0, split))), crc32c(text)) << split;
  }
}

TEST(Crc32c, MaskRotatesAndAddsTheConstant) {
  EXPECT_EQ(mask_crc32c(0), 0xA282EAD8u);
  EXPECT_EQ(mask_crc32c(0x00008000u), 0xA282EAD9u);  // bit 15 rotates to bit 0
  EXPECT_EQ(mask_crc32c(1), 0xA284EAD8u);            // bit 0 rotates to bit 17
}

// Made by the `tensorboard` package (2.21) itself:
//   buf = io.BytesIO(); RecordWriter(buf).write(event.SerializeToString()); buf.getvalue().hex()
// with tensorboard.summary.writer.record_writer.RecordWriter and compat.proto.event_pb2.
TEST(TensorboardRecords, MatchTensorboardsOwnWriterByteForByte) {
  // Event(wall_time=1700000000.25, file_version="brain.Event:2")
  EXPECT_EQ(to_hex(frame_record(file_version_event(1700000000.25))),
            "1800000000000000a37f4b220900001040fc54d9411a0d627261696e2e4576656e743a32338d2fe9");
  // Event(wall_time=1700000001.5, step=300, summary=Summary(value=[
  //   Value(tag="train/loss", simple_value=4.125), Value(tag="eval/ppl", simple_value=-0.1)]))
  EXPECT_EQ(to_hex(frame_record(
                scalars_event(1700000001.5, 300, {{"train/loss", 4.125}, {"eval/ppl", -0.1}}))),
            "3200000000000000241956ec0900006040fc54d94110ac022a240a110a0a747261696e2f6c6f737315"
            "000084400a0f0a086576616c2f70706c15cdccccbd97f58a27");
  // Event(wall_time=2.0, step=201, session_log=SessionLog(status=START))
  EXPECT_EQ(to_hex(frame_record(session_start_event(2.0, 201))),
            "100000000000000095fbfe1809000000000000004010c9013a0208010f8631bf");
}

// A protobuf reader of the test's own, independent of the library's: field -> raw values.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t integer = 0;  // varint, fixed32 and fixed64 bits
  std::string bytes;     // length-delimited
};

std::vector<Field> decode_message(std::string_view message) {
  std::vector<Field> fields;
  size_t pos = 0;
  const auto varint = [&] {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      EXPECT_LT(pos, message.size());
      if (pos >= message.size()) return value;
      const auto byte = static_cast<unsigned char>(message[pos++]);
      value |= uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) return value;
    }
  };
  while (pos < message.size()) {
    Field field;
    const uint64_t key = varint();
    field.number = static_cast<uint32_t>(key >> 3);
    field.wire_type = static_cast<uint32_t>(key & 7);
    if (field.wire_type == 0) {
      field.integer = varint();
    } else if (field.wire_type == 1 || field.wire_type == 5) {
      const size_t size = field.wire_type == 1 ? 8 : 4;
      EXPECT_LE(pos + size, message.size());
      std::memcpy(&field.integer, message.data() + pos, size);  // little-endian host
      pos += size;
    } else {
      EXPECT_EQ(field.wire_type, 2u);
      const uint64_t size = varint();
      EXPECT_LE(pos + size, message.size());
      field.bytes = std::string(message.substr(pos, size));
      pos += size;
    }
    fields.push_back(field);
  }
  return fields;
}

TEST(TensorboardRecords, ScalarsEventDecodesBack) {
  const std::vector<Scalar> scalars = {
      {"train/loss", 3.75}, {"train/lr", 1.5e-4}, {"train/mfu", 0.4125}, {"eval/loss", -2.0}};
  const std::vector<Field> event = decode_message(scalars_event(1234.5, 1000000007, scalars));
  ASSERT_EQ(event.size(), 3u);
  EXPECT_EQ(event[0].number, 1u);  // wall_time, a double
  double wall_time = 0;
  std::memcpy(&wall_time, &event[0].integer, sizeof wall_time);
  EXPECT_EQ(wall_time, 1234.5);
  EXPECT_EQ(event[1].number, 2u);  // step
  EXPECT_EQ(event[1].integer, 1000000007u);
  EXPECT_EQ(event[2].number, 5u);  // summary
  const std::vector<Field> values = decode_message(event[2].bytes);
  ASSERT_EQ(values.size(), scalars.size());
  for (size_t i = 0; i < scalars.size(); ++i) {
    EXPECT_EQ(values[i].number, 1u);  // Summary.value
    const std::vector<Field> value = decode_message(values[i].bytes);
    ASSERT_EQ(value.size(), 2u);
    EXPECT_EQ(value[0].number, 1u);
    EXPECT_EQ(value[0].bytes, scalars[i].tag);
    EXPECT_EQ(value[1].number, 2u);  // simple_value, a float
    EXPECT_EQ(value[1].wire_type, 5u);
    float simple = 0;
    std::memcpy(&simple, &value[1].integer, sizeof simple);
    EXPECT_EQ(simple, static_cast<float>(scalars[i].value));
  }
}

TEST(TensorboardRecords, EventHeaderGivesStepAndFileVersion) {
  const auto version = read_event_header(file_version_event(5.0));
  ASSERT_TRUE(version.has_value());
  EXPECT_TRUE(version->file_version);
  EXPECT_EQ(version->step, 0);
  const auto scalars = read_event_header(scalars_event(5.0, 42, {{"a", 1.0}}));
  ASSERT_TRUE(scalars.has_value());
  EXPECT_FALSE(scalars->file_version);
  EXPECT_EQ(scalars->step, 42);
  EXPECT_TRUE(scalars->tags == std::vector<std::string>{"a"});
  const auto two =
      read_event_header(scalars_event(5.0, 3, {{"eval/loss", 1.0}, {"eval/ppl", 2.7}}));
  ASSERT_TRUE(two.has_value());
  EXPECT_TRUE(two->tags == (std::vector<std::string>{"eval/loss", "eval/ppl"}));
  const auto start = read_event_header(session_start_event(5.0, 7));
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->step, 7);
  const std::string event = scalars_event(5.0, 42, {{"a", 1.0}});
  EXPECT_FALSE(read_event_header(event.substr(0, event.size() - 3)).has_value());  // cut short
  EXPECT_FALSE(read_event_header(std::string("\x00\x01", 2)).has_value());         // field 0
}

TEST(TensorboardRecords, ScanStopsAtATornOrCorruptRecord) {
  const std::string a = frame_record(file_version_event(1.0));
  const std::string b = frame_record(scalars_event(2.0, 1, {{"x", 1.0}}));
  const std::string c = frame_record(scalars_event(3.0, 2, {{"x", 2.0}}));
  const std::string whole = a + b + c;
  RecordScan scan = scan_records(whole);
  ASSERT_EQ(scan.records.size(), 3u);
  EXPECT_EQ(scan.valid_bytes, whole.size());
  EXPECT_EQ(scan.records[1].framed, b);
  EXPECT_EQ(scan.records[1].data, b.substr(12, b.size() - 16));
  for (size_t cut = 1; cut < c.size(); ++cut) {  // a write cut short anywhere in the last record
    scan = scan_records(std::string_view(whole).substr(0, whole.size() - cut));
    EXPECT_EQ(scan.records.size(), 2u) << cut;
    EXPECT_EQ(scan.valid_bytes, a.size() + b.size()) << cut;
  }
  for (const size_t flipped : {size_t{3}, size_t{9}, b.size() / 2, b.size() - 1}) {
    std::string damaged = whole;
    damaged[a.size() + flipped] ^= 0x20;  // in the length, its CRC, the data or the data's CRC
    scan = scan_records(damaged);
    EXPECT_EQ(scan.records.size(), 1u) << flipped;
    EXPECT_EQ(scan.valid_bytes, a.size()) << flipped;
  }
}

TEST(TensorboardWriter, NewFileNameSortsAfterEveryExistingOne) {
  EXPECT_EQ(next_event_file_name({}, 1700000000, "host", 12),
            "events.out.tfevents.1700000000.host.12");
  // A file of this second (an earlier launch, or a clock that went back) pushes the name on.
  EXPECT_EQ(next_event_file_name({"events.out.tfevents.1700000005.other.99999", "notes.txt",
                                  "events.out.tfevents.bad.x", "x.tfevents.1800000000"},
                                 1700000000, "host", 12),
            "events.out.tfevents.1700000006.host.12");
  EXPECT_EQ(next_event_file_name({"events.out.tfevents.1600000000.other.1"}, 1700000000, "h", 3),
            "events.out.tfevents.1700000000.h.3");
}

std::string event_file(const std::vector<int64_t>& steps) {
  std::string bytes = frame_record(file_version_event(1.0));
  for (const int64_t step : steps) {
    bytes += frame_record(scalars_event(2.0, step, {{"train/loss", static_cast<double>(step)}}));
  }
  return bytes;
}

std::vector<int64_t> steps_in(const std::string& path) {
  const std::string bytes = files::read_file(path);
  const RecordScan scan = scan_records(bytes);
  EXPECT_EQ(scan.valid_bytes, bytes.size()) << path;
  std::vector<int64_t> steps;
  for (const Record& record : scan.records) {
    const auto header = read_event_header(record.data);
    EXPECT_TRUE(header.has_value());
    if (header && !header->file_version) steps.push_back(header->step);
  }
  return steps;
}

TEST(TensorboardWriter, DropKeepsStepsUpToTheResumedOneAndLeavesOtherFilesAlone) {
  testing::ScratchDir dir;
  const std::string first = dir.write("events.out.tfevents.100.h.1", event_file({1, 2, 3}));
  const std::string second = dir.write("events.out.tfevents.200.h.2", event_file({4, 5, 6, 7}));
  const std::string torn_bytes = event_file({8, 9});
  const std::string torn =
      dir.write("events.out.tfevents.300.h.3", torn_bytes.substr(0, torn_bytes.size() - 5));
  const std::string other = dir.write("notes.txt", "not an event file");
  const std::string stale = dir.write(".rewrite-77.tmp", "an earlier rewrite cut short");

  const DropReport report = drop_steps_after(dir.str(), 5);
  EXPECT_EQ(report.files_rewritten, 2);
  EXPECT_EQ(report.records_dropped, 3);  // 6, 7 and 8 (9 is torn)
  EXPECT_GT(report.damaged_bytes, 0u);
  EXPECT_EQ(steps_in(first), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(files::read_file(first), event_file({1, 2, 3}));  // untouched
  EXPECT_EQ(steps_in(second), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(files::read_file(second), event_file({4, 5}));  // the kept records byte for byte
  // Left with its header only, but kept: a running TensorBoard may be reading it.
  EXPECT_EQ(files::read_file(torn), event_file({}));
  EXPECT_EQ(files::read_file(other), "not an event file");
  EXPECT_FALSE(files::exists(stale));
  EXPECT_EQ(files::list_directory(dir.str()).size(), 4u);

  const DropReport again = drop_steps_after(dir.str(), 5);  // nothing left to drop
  EXPECT_EQ(again.files_rewritten, 0);
  EXPECT_EQ(again.records_dropped, 0);
}

TEST(TensorboardWriter, EachLaunchAppendsItsOwnFileReadableAsItGoes) {
  testing::ScratchDir dir;
  const std::string folder = dir / "run/tensorboard";
  std::string first_path;
  {
    EventFileWriter writer(folder, 0);
    first_path = writer.path();
    for (int64_t step = 1; step <= 6; ++step) {
      writer.write_scalars(step, {{"train/loss", 1.0 / static_cast<double>(step)}});
      // Nothing is buffered: every record is in the file as soon as it is written.
      EXPECT_EQ(steps_in(first_path).back(), step);
    }
    writer.sync();
    const std::string bytes = files::read_file(first_path);
    const RecordScan scan = scan_records(bytes);  // views into `bytes`
    ASSERT_GE(scan.records.size(), 2u);
    EXPECT_TRUE(read_event_header(scan.records[0].data)->file_version);
    // A fresh run's SessionLog START at step 1 (and every scalar's step after it).
    const std::vector<Field> start = decode_message(scan.records[1].data);
    ASSERT_EQ(start.size(), 3u);
    EXPECT_EQ(start[1].integer, 1u);
    EXPECT_EQ(start[2].number, 7u);
    EXPECT_EQ(start[2].bytes, std::string("\x08\x01", 2));
  }
  EventFileWriter resumed(folder, 4);  // from a checkpoint of step 4
  EXPECT_EQ(resumed.dropped().records_dropped, 2);
  EXPECT_GT(files::file_name(resumed.path()), files::file_name(first_path));
  resumed.write_scalars(5, {{"train/loss", 0.5}});
  EXPECT_EQ(steps_in(first_path), (std::vector<int64_t>{1, 1, 2, 3, 4}));  // START at 1, then 1..4
  EXPECT_EQ(steps_in(resumed.path()), (std::vector<int64_t>{5, 5}));       // START at 5, then 5
  EXPECT_EQ(files::list_directory(folder).size(), 2u);
}

TEST(TensorboardWriter, AStepLoggedAgainReplacesTheEarlierLaunchsValuesOfItsTags) {
  testing::ScratchDir dir;
  std::string first_path;
  {
    EventFileWriter writer(dir.str(), 0);
    first_path = writer.path();
    writer.write_scalars(8, {{"train/loss", 1.0}});
    writer.write_scalars(8, {{"eval/loss", 2.0}, {"eval/ppl", 7.4}});
  }
  // A launch from the checkpoint of step 8 with nothing left to train evaluates step 8 again.
  EventFileWriter again(dir.str(), 8);
  EXPECT_EQ(again.dropped().records_dropped, 0);
  again.write_scalars(8, {{"eval/loss", 2.5}, {"eval/ppl", 12.2}});
  EXPECT_EQ(again.dropped().records_dropped, 1);
  const std::string bytes = files::read_file(first_path);
  const RecordScan scan = scan_records(bytes);
  std::vector<std::string> tags;
  for (const Record& record : scan.records) {
    const auto header = read_event_header(record.data);
    ASSERT_TRUE(header.has_value());
    tags.insert(tags.end(), header->tags.begin(), header->tags.end());
  }
  EXPECT_TRUE(tags == std::vector<std::string>{"train/loss"});
  EXPECT_EQ(steps_in(again.path()), (std::vector<int64_t>{9, 8}));  // START at 9, then step 8
}

}  // namespace
}  // namespace cca
