#pragma once
// IDX files (the MNIST / Fashion-MNIST format, LeCun et al., "THE MNIST DATABASE", file formats
// section), gzip-compressed or plain, without LibTorch. An IDX file is a 4-byte magic (two zero bytes,
// a type code, the number of dimensions), one big-endian uint32 size per dimension, then the data.
// Every check names the file: a bad magic, a type or rank that is not what is asked, sizes that do
// not match, data shorter (truncated) or longer than the sizes say, a corrupt gzip stream.
#include <cstdint>
#include <string>
#include <vector>

#include "paraplan/exec/dataset.hpp"  // DataError

namespace paraplan::exec {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // row-major, dims' product bytes
};

// Reads an unsigned-byte (type code 0x08) IDX file with `rank` dimensions. Files ending in .gz are
// inflated with zlib. DataError naming the file on any problem.
IdxArray read_idx_u8(const std::string& path, int rank);

// A labelled image set: images [n, rows, cols] uint8, labels [n] in [0, classes).
struct ImageSet {
  int64_t n = 0, rows = 0, cols = 0;
  std::vector<uint8_t> images, labels;
  std::string origin;  // the images file
};

// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) as the Debian package dataset-fashion-mnist installs it.
std::string default_fashion_mnist_dir();  // /usr/share/datasets/fashion-mnist
// split "train" or "t10k": {split}-images-idx3-ubyte.gz and {split}-labels-idx1-ubyte.gz in dir.
// Checks that both hold the same number of items and that every label is below 10.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split);

// The class names of Fashion-MNIST (zalandoresearch/fashion-mnist README, "Labels").
const char* fashion_mnist_class(int label);

}  // namespace paraplan::exec
