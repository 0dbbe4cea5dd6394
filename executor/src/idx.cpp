#include "paraplan/exec/idx.hpp"

#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>

namespace paraplan::exec {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A byte source over a plain or gzip file; gzread also reads plain files, but a name ending in .gz
// that is not gzip must be an error, not raw bytes.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), gz_(ends_with(path, ".gz")) {
    if (!std::filesystem::exists(path)) throw DataError(path + ": no such file");
    if (gz_) {
      std::array<unsigned char, 2> head{};
      std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
      if (!f || std::fread(head.data(), 1, 2, f.get()) != 2 || head[0] != 0x1f || head[1] != 0x8b)
        throw DataError(path + ": not a gzip file (the name ends in .gz but it does not start with bytes 1f 8b)");
      file_ = gzopen(path.c_str(), "rb");
    } else {
      file_ = gzopen(path.c_str(), "rb");  // transparent for a plain file
    }
    if (!file_) throw DataError(path + ": cannot open");
    gzbuffer(file_, 1 << 17);
  }
  ~Reader() {
    if (file_) gzclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Reads up to n bytes; returns how many. Throws on a corrupt stream.
  size_t read(void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_, static_cast<char*>(dst) + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        throw DataError(path_ + ": corrupt gzip data (" + std::string(msg ? msg : "zlib error") + ")");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    // A gzip stream cut short reads as end-of-data; zlib reports it through gzerror.
    int code = 0;
    gzerror(file_, &code);
    if (code != Z_OK && code != Z_BUF_ERROR)
      throw DataError(path_ + ": corrupt gzip data (zlib error " + std::to_string(code) + ")");
    if (code == Z_BUF_ERROR && gz_)
      throw DataError(path_ + ": truncated gzip stream (the compressed file ends before its data does)");
    return done;
  }

 private:
  std::string path_;
  bool gz_;
  gzFile file_ = nullptr;
};

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

}  // namespace

IdxArray read_idx_u8(const std::string& path, int rank) {
  Reader in(path);
  std::array<unsigned char, 4> magic{};
  if (in.read(magic.data(), 4) != 4) throw DataError(path + ": truncated (shorter than the 4-byte IDX magic)");
  // The magic: 0, 0, type (0x08 = unsigned byte), number of dimensions.
  if (magic[0] != 0 || magic[1] != 0)
    throw DataError(path + ": not an IDX file (magic " + std::to_string(big_endian(magic.data())) +
                    "; IDX files start with two zero bytes)");
  if (magic[2] != 0x08)
    throw DataError(path + ": IDX type code " + std::to_string(magic[2]) + ", expected 8 (unsigned byte)");
  if (magic[3] != rank)
    throw DataError(path + ": IDX file with " + std::to_string(magic[3]) + " dimension(s), expected " +
                    std::to_string(rank) + " (magic " + std::to_string(big_endian(magic.data())) + ", expected " +
                    std::to_string(0x0800 + rank) + ")");
  IdxArray out;
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    std::array<unsigned char, 4> b{};
    if (in.read(b.data(), 4) != 4)
      throw DataError(path + ": truncated in the header (size of dimension " + std::to_string(d) + " missing)");
    const int64_t n = big_endian(b.data());
    if (n == 0) throw DataError(path + ": dimension " + std::to_string(d) + " has size 0");
    if (total > (int64_t{1} << 40) / n) throw DataError(path + ": sizes multiply to more than 2^40 bytes");
    total *= n;
    out.dims.push_back(n);
  }
  out.data.resize(static_cast<size_t>(total));
  const size_t got = in.read(out.data.data(), out.data.size());
  if (got != out.data.size())
    throw DataError(path + ": truncated: the header says " + std::to_string(total) + " bytes of data, the file has " +
                    std::to_string(got));
  unsigned char extra = 0;
  if (in.read(&extra, 1) != 0)
    throw DataError(path + ": more data than the header's sizes say (" + std::to_string(total) + " bytes)");
  return out;
}

std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "t10k")
    throw DataError("split = " + split + ": Fashion-MNIST has \"train\" and \"t10k\"");
  namespace fs = std::filesystem;
  const std::string images_path = (fs::path(dir) / (split + "-images-idx3-ubyte.gz")).string();
  const std::string labels_path = (fs::path(dir) / (split + "-labels-idx1-ubyte.gz")).string();
  for (const std::string& p : {images_path, labels_path})
    if (!fs::exists(p))
      throw DataError(p + ": no such file (Fashion-MNIST comes with the Debian package dataset-fashion-mnist: "
                          "apt-get install dataset-fashion-mnist)");
  IdxArray images = read_idx_u8(images_path, 3);
  IdxArray labels = read_idx_u8(labels_path, 1);
  if (images.dims[0] != labels.dims[0])
    throw DataError(labels_path + ": " + std::to_string(labels.dims[0]) + " labels for " +
                    std::to_string(images.dims[0]) + " images in " + images_path);
  for (size_t i = 0; i < labels.data.size(); ++i)
    if (labels.data[i] >= 10)
      throw DataError(labels_path + ": label " + std::to_string(labels.data[i]) + " of item " + std::to_string(i) +
                      " is not a class (0-9)");
  ImageSet s;
  s.n = images.dims[0];
  s.rows = images.dims[1];
  s.cols = images.dims[2];
  s.images = std::move(images.data);
  s.labels = std::move(labels.data);
  s.origin = images_path;
  return s;
}

const char* fashion_mnist_class(int label) {
  static const char* names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return label >= 0 && label < 10 ? names[label] : "?";
}

}  // namespace paraplan::exec
