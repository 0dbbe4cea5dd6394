// The IDX reader on files written here (good, and corrupt in each way the reader checks), and on the
// Fashion-MNIST files of the Debian package dataset-fashion-mnist when it is installed.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "paraplan/exec/idx.hpp"

using namespace paraplan::exec;
namespace fs = std::filesystem;

namespace {

fs::path dir() {
  const fs::path d = fs::temp_directory_path() / ("paraplan-idx-" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

std::string header(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string h{0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<char>((d >> s) & 0xff));
  return h;
}

std::string write_plain(const std::string& name, const std::string& bytes) {
  const fs::path p = dir() / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

std::string write_gz(const std::string& name, const std::string& bytes) {
  const fs::path p = dir() / name;
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  return p.string();
}

std::string error_of(const std::string& path, int rank) {
  try {
    read_idx_u8(path, rank);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

// 2 images of 2x3 and their labels: the bytes are their own index, so the order is checked.
const std::string kImages = header(8, {2, 2, 3}) + std::string{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
const std::string kLabels = header(8, {2}) + std::string{7, 3};

}  // namespace

TEST(Idx, ReadsPlainAndGzip) {
  for (const std::string& p : {write_plain("a-idx3", kImages), write_gz("a-idx3.gz", kImages)}) {
    const IdxArray a = read_idx_u8(p, 3);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 2, 3})) << p;
    ASSERT_EQ(a.data.size(), 12u);
    for (size_t i = 0; i < 12; ++i) EXPECT_EQ(a.data[i], i);
  }
}

TEST(Idx, CorruptFilesNameTheFileAndTheProblem) {
  const std::string missing = (dir() / "nope.gz").string();
  EXPECT_EQ(error_of(missing, 3), missing + ": no such file");
  // Wrong magic: not starting with two zero bytes, another type code, another number of dimensions.
  const std::string bad_magic = write_gz("bad-magic.gz", "\x1f\x8b" + kImages.substr(2));
  EXPECT_NE(error_of(bad_magic, 3).find(bad_magic + ": not an IDX file"), std::string::npos) << error_of(bad_magic, 3);
  const std::string int_type = write_gz("int.gz", header(0x0c, {2, 2, 3}) + std::string(48, '\0'));
  EXPECT_EQ(error_of(int_type, 3), int_type + ": IDX type code 12, expected 8 (unsigned byte)");
  const std::string labels = write_gz("labels.gz", kLabels);
  // 0x0801 = 2049 is the labels' magic, 0x0803 = 2051 the images' (the MNIST page's file formats).
  EXPECT_EQ(error_of(labels, 3),
            labels + ": IDX file with 1 dimension(s), expected 3 (magic 2049, expected 2051)");
  // Truncated: in the header, in the data; and data beyond the sizes.
  const std::string short_header = write_gz("short-header.gz", kImages.substr(0, 10));
  EXPECT_NE(error_of(short_header, 3).find(short_header + ": truncated in the header"), std::string::npos);
  const std::string short_data = write_gz("short-data.gz", kImages.substr(0, kImages.size() - 5));
  EXPECT_EQ(error_of(short_data, 3), short_data + ": truncated: the header says 12 bytes of data, the file has 7");
  const std::string long_data = write_gz("long-data.gz", kImages + "x");
  EXPECT_EQ(error_of(long_data, 3), long_data + ": more data than the header's sizes say (12 bytes)");
  // A gzip stream cut in the middle, a .gz that is not gzip, and flipped bytes inside the stream.
  std::string gz;
  {
    std::ifstream in(write_gz("whole.gz", kImages + std::string(4000, 'a')), std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = write_plain("cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_NE(error_of(cut, 3).find(cut + ": truncated"), std::string::npos) << error_of(cut, 3);
  const std::string plain_named_gz = write_plain("plain.gz", kImages);
  EXPECT_NE(error_of(plain_named_gz, 3).find(plain_named_gz + ": not a gzip file"), std::string::npos);
  std::string flipped = gz;
  for (size_t i = 12; i < 20 && i < flipped.size(); ++i) flipped[i] = static_cast<char>(~flipped[i]);
  const std::string corrupt = write_plain("corrupt.gz", flipped);
  EXPECT_NE(error_of(corrupt, 3).find(corrupt + ": "), std::string::npos);
  EXPECT_NE(error_of(corrupt, 3), "") << "flipped deflate bytes must not read as data";
}

TEST(Idx, ImageSetChecksCountsAndLabels) {
  const fs::path d = dir() / "set";
  fs::create_directories(d);
  auto put = [&](const std::string& name, const std::string& bytes) {
    gzFile f = gzopen((d / name).c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  };
  put("train-images-idx3-ubyte.gz", kImages);
  put("train-labels-idx1-ubyte.gz", kLabels);
  const ImageSet s = load_fashion_mnist(d.string(), "train");
  EXPECT_EQ(s.n, 2);
  EXPECT_EQ(s.rows, 2);
  EXPECT_EQ(s.cols, 3);
  EXPECT_EQ(s.labels, (std::vector<uint8_t>{7, 3}));
  put("train-labels-idx1-ubyte.gz", header(8, {3}) + std::string{1, 2, 3});
  try {
    load_fashion_mnist(d.string(), "train");
    ADD_FAILURE() << "3 labels for 2 images must be refused";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(": 3 labels for 2 images"), std::string::npos) << e.what();
  }
  put("train-labels-idx1-ubyte.gz", header(8, {2}) + std::string{1, 12});
  try {
    load_fashion_mnist(d.string(), "train");
    ADD_FAILURE() << "label 12 must be refused";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("label 12 of item 1 is not a class (0-9)"), std::string::npos) << e.what();
  }
  try {
    load_fashion_mnist(d.string(), "t10k");
    ADD_FAILURE() << "missing files must be refused";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("t10k-images-idx3-ubyte.gz: no such file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dataset-fashion-mnist"), std::string::npos) << e.what();
  }
}

// The published sizes of Fashion-MNIST (Xiao et al. 2017, Table 1 and the README): 60,000 training and
// 10,000 test images of 28x28, 10 classes of 6,000 training and 1,000 test images each.
TEST(Idx, DebianFashionMnist) {
  const std::string d = default_fashion_mnist_dir();
  if (!fs::exists(fs::path(d) / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << d << " is missing: the Debian package dataset-fashion-mnist is not installed";
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", 60000}, {"t10k", 10000}}) {
    const ImageSet s = load_fashion_mnist(d, split);
    EXPECT_EQ(s.n, n);
    EXPECT_EQ(s.rows, 28);
    EXPECT_EQ(s.cols, 28);
    std::vector<int64_t> per_class(10);
    for (uint8_t l : s.labels) ++per_class[l];
    for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], n / 10) << split << " class " << fashion_mnist_class(c);
  }
}
