// The safetensors reader and writer against the format as the README specifies it: an 8-byte
// little-endian header length, a JSON header, then the data; files here are built byte by byte.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "paraplan/exec/safetensors.hpp"
#include "format_error.hpp"

using namespace paraplan::exec;
namespace fs = std::filesystem;

namespace {

std::string tmp(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("paraplan-st-" + std::to_string(getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

// A file from a header text and raw data, as the spec lays it out.
std::string build(const std::string& name, const std::string& header, const std::string& data) {
  const std::string path = tmp(name);
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
  return path;
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  size_t i = 0;
  for (float f : v) std::memcpy(&s[4 * i++], &f, 4);
  return s;
}

std::string error_of(const std::string& path) {
  return paraplan::exec::testing::format_error_of<SafetensorsFile>(path);
}

}  // namespace

TEST(Safetensors, ReadsAFileBuiltFromTheSpec) {
  const std::string path = build(
      "spec.safetensors",
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      floats({1.5f, -2.0f, 3.25f}));
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorEntry& a = f.at("a");
  EXPECT_EQ(a.dtype, Dtype::f32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2}));
  float va[2], vb[1];
  f.read(a, va);
  f.read(f.at("b"), vb);
  EXPECT_EQ(va[0], 1.5f);
  EXPECT_EQ(va[1], -2.0f);
  EXPECT_EQ(vb[0], 3.25f);
}

TEST(Safetensors, WritesTheSpecLayoutByteForByte) {
  const std::string path = tmp("one.safetensors");
  const float one = 1.0f;
  write_safetensors(path, {{"x", Dtype::f32, {1}, &one}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";  // 54 bytes
  const std::string padded = header + std::string(2, ' ');                                   // to 56 = 7 * 8
  ASSERT_EQ(bytes.size(), 8 + padded.size() + 4);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), padded.size());
  for (int i = 1; i < 8; ++i) EXPECT_EQ(bytes[static_cast<size_t>(i)], '\0');
  EXPECT_EQ(bytes.substr(8, padded.size()), padded);
  EXPECT_EQ(bytes.substr(8 + padded.size()), floats({1.0f}));
}

TEST(Safetensors, RoundTripsDtypesShapesAndMetadata) {
  const std::string path = tmp("round.safetensors");
  const std::vector<float> w{1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> h{0x3f80, 0xc000};  // bf16 1.0, -2.0
  const std::vector<int64_t> ids{7, -9};
  write_safetensors(path,
                    {{"w", Dtype::f32, {2, 3}, w.data()}, {"h", Dtype::bf16, {2}, h.data()},
                     {"ids", Dtype::i64, {1, 2}, ids.data()}},
                    {{"note", "paraplan"}});
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("note"), "paraplan");
  EXPECT_EQ(f.at("w").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.at("h").dtype, Dtype::bf16);
  std::vector<float> w2(6);
  std::vector<uint16_t> h2(2);
  std::vector<int64_t> ids2(2);
  f.read(f.at("w"), w2.data());
  f.read(f.at("h"), h2.data());
  f.read(f.at("ids"), ids2.data());
  EXPECT_EQ(w2, w);
  EXPECT_EQ(h2, h);
  EXPECT_EQ(ids2, ids);
}

TEST(Safetensors, CorruptFilesAreRejectedNamingFileAndTensor) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  // Truncated data.
  std::string p = build("short.safetensors", ok, floats({1.0f}));
  EXPECT_NE(error_of(p).find("short.safetensors: the tensors cover 8 bytes of data but the file holds 4 (truncated)"),
            std::string::npos)
      << error_of(p);
  // Header length beyond the file.
  p = build("len.safetensors", "", "");
  {
    std::ofstream out(p, std::ios::binary);
    const unsigned char n[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
    out.write(reinterpret_cast<const char*>(n), 8);
  }
  EXPECT_NE(error_of(p).find("header length 65535 bytes does not fit"), std::string::npos) << error_of(p);
  // Not JSON.
  p = build("json.safetensors", "{not json", "");
  EXPECT_NE(error_of(p).find("header is not valid JSON"), std::string::npos) << error_of(p);
  // Unknown dtype.
  p = build("dtype.safetensors", R"({"a":{"dtype":"F42","shape":[1],"data_offsets":[0,4]}})", floats({1}));
  EXPECT_NE(error_of(p).find("tensor a: unknown dtype \"F42\""), std::string::npos) << error_of(p);
  // Byte count disagrees with the shape.
  p = build("shape.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1, 2}));
  EXPECT_NE(error_of(p).find("tensor a: data_offsets [0,8] hold 8 bytes, but shape [3] of F32 needs 12"),
            std::string::npos)
      << error_of(p);
  // A gap between tensors.
  p = build("gap.safetensors",
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
            floats({1, 2, 3}));
  EXPECT_NE(error_of(p).find("tensor b: data starts at byte 8 but the previous tensor ends at 4"), std::string::npos)
      << error_of(p);
  // Missing file.
  EXPECT_NE(error_of(tmp("absent.safetensors")).find("absent.safetensors: cannot open"), std::string::npos);
}

// Found by fuzz_safetensors (tests/fuzz/corpus/safetensors/regression-number-overflow): a number past a
// double's range in the header made nlohmann throw out_of_range, which the reader did not catch: terminate.
TEST(Safetensors, HeaderNumberBeyondADoubleIsAFormatError) {
  const std::string p = build("overflow.safetensors", R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})",
                              floats({1.0f}));
  EXPECT_NE(error_of(p).find("header is not valid JSON"), std::string::npos) << error_of(p);
  EXPECT_NE(error_of(p).find("number overflow"), std::string::npos) << error_of(p);
}

// Found by the limits review: numel x element size wrapped around 2^64, so [2^62] of F32 "needed" 0 bytes
// and was accepted; and a zero dimension after large ones overflowed numel's product.
TEST(Safetensors, ShapesPast2To64BytesAreRefused) {
  const std::string p =
      build("wrap.safetensors", R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", "");
  EXPECT_NE(error_of(p).find("tensor a: shape [4611686018427387904] of F32 needs more than 2^64 bytes"),
            std::string::npos)
      << error_of(p);
  const std::string z =
      build("zero.safetensors", R"({"z":{"dtype":"U8","shape":[4611686018427387904,2,0],"data_offsets":[0,0]}})", "");
  EXPECT_EQ(SafetensorsFile(z).at("z").numel(), 0);
}
