#pragma once
// The safetensors format (https://github.com/huggingface/safetensors, README "Format"): an 8-byte
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {string: string}}, then the tensor bytes, offsets relative to the end of the header.
// This is the project's own reader and writer; it needs no LibTorch, so it is tested on its own.
// Every error names the file, and the tensor or header field at fault.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace paraplan::exec {

enum class Dtype { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

const char* safetensors_name(Dtype d);       // "F32", "BF16", ...
size_t element_size(Dtype d);                // bytes per element
bool dtype_from_safetensors(const std::string& name, Dtype& out);

class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TensorEntry {
  std::string name;
  Dtype dtype = Dtype::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
  int64_t numel() const;  // of a tensor SafetensorsFile accepted: its bytes, hence its count, fit in 64 bits
  uint64_t nbytes() const { return end - begin; }
};

// A parsed file: the header is read and checked when opened; tensor bytes are read on demand.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorEntry* find(const std::string& name) const;
  const TensorEntry& at(const std::string& name) const;  // FormatError naming the file if absent
  // Copies the tensor's bytes into dst, which holds exactly entry.nbytes().
  void read(const TensorEntry& entry, void* dst) const;

 private:
  std::string path_;
  uint64_t data_start_ = 0;
  std::vector<TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write; data points at nbytes = numel * element_size(dtype) bytes (little-endian).
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes tensors in the given order; the header is padded with spaces to a multiple of 8 bytes, as
// the reference implementation does, so that the data section stays aligned.
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace paraplan::exec
