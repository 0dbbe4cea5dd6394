// The safetensors reader and writer. Rules checked, from the format description
// (huggingface/safetensors README and safetensors/src/tensor.rs validate): the header is a JSON object,
// at most 100 MB; each tensor has a known dtype, a shape of non-negative dims and data_offsets
// [begin, end] with end - begin = numel * element size; the byte ranges, sorted, are contiguous from 0
// with no gaps or overlaps, and end exactly where the file ends.
#include "paraplan/exec/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace paraplan::exec {

namespace {

struct DtypeInfo {
  Dtype d;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {Dtype::f64, "F64", 8}, {Dtype::f32, "F32", 4}, {Dtype::f16, "F16", 2}, {Dtype::bf16, "BF16", 2},
    {Dtype::i64, "I64", 8}, {Dtype::i32, "I32", 4}, {Dtype::i16, "I16", 2}, {Dtype::i8, "I8", 1},
    {Dtype::u8, "U8", 1},   {Dtype::boolean, "BOOL", 1},
};

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // safetensors MAX_HEADER_SIZE

std::string shape_string(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

const char* safetensors_name(Dtype d) {
  for (const auto& i : kDtypes)
    if (i.d == d) return i.name;
  return "?";
}

size_t element_size(Dtype d) {
  for (const auto& i : kDtypes)
    if (i.d == d) return i.size;
  return 0;
}

bool dtype_from_safetensors(const std::string& name, Dtype& out) {
  for (const auto& i : kDtypes)
    if (name == i.name) {
      out = i.d;
      return true;
    }
  return false;
}

int64_t TensorEntry::numel() const {
  // A zero dimension first: [2^62, 2, 0] holds no element, but its leading product would overflow.
  for (int64_t d : shape)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // <= the tensor's byte count, which the reader bounds by the file size
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8)
    throw FormatError(path + ": not a safetensors file: " + std::to_string(file_size) +
                      " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];  // little-endian
  if (header_len > kMaxHeaderBytes || header_len > file_size - 8)
    throw FormatError(path + ": header length " + std::to_string(header_len) + " bytes does not fit in the " +
                      std::to_string(file_size) + "-byte file (corrupt or truncated)");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw FormatError(path + ": cannot read the " + std::to_string(header_len) + "-byte header");
  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    throw FormatError(path + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw FormatError(path + ": header must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw FormatError(path + ": __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw FormatError(path + ": __metadata__." + m.key() + " must be a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor " + name;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw FormatError(where + ": needs dtype, shape and data_offsets");
    TensorEntry e;
    e.name = name;
    if (!v["dtype"].is_string() || !dtype_from_safetensors(v["dtype"].get<std::string>(), e.dtype))
      throw FormatError(where + ": unknown dtype " + v["dtype"].dump());
    if (!v["shape"].is_array()) throw FormatError(where + ": shape must be an array");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        throw FormatError(where + ": shape " + v["shape"].dump() + " must hold non-negative integers");
      e.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw FormatError(where + ": data_offsets " + off.dump() + " must be [begin, end]");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.end < e.begin) throw FormatError(where + ": data_offsets " + off.dump() + " end before begin");
    // numel * element size in checked arithmetic: a shape like [2^62] of F32 would wrap to 0 bytes.
    uint64_t expect = element_size(e.dtype);
    for (int64_t d : e.shape)
      if (__builtin_mul_overflow(expect, static_cast<uint64_t>(d), &expect))
        throw FormatError(where + ": shape " + shape_string(e.shape) + " of " + safetensors_name(e.dtype) +
                          " needs more than 2^64 bytes");
    if (e.nbytes() != expect)
      throw FormatError(where + ": data_offsets " + off.dump() + " hold " + std::to_string(e.nbytes()) +
                        " bytes, but shape " + shape_string(e.shape) + " of " + safetensors_name(e.dtype) +
                        " needs " + std::to_string(expect));
    tensors_.push_back(std::move(e));
  }
  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  uint64_t expected = 0;
  for (const TensorEntry* t : by_offset) {
    if (t->begin != expected)
      throw FormatError(path + ": tensor " + t->name + ": data starts at byte " + std::to_string(t->begin) +
                        " but the previous tensor ends at " + std::to_string(expected) + " (gap or overlap)");
    expected = t->end;
  }
  if (expected != data_size)
    throw FormatError(path + ": the tensors cover " + std::to_string(expected) + " bytes of data but the file holds " +
                      std::to_string(data_size) + (expected > data_size ? " (truncated)" : " (trailing bytes)"));
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorEntry& SafetensorsFile::at(const std::string& name) const {
  if (const TensorEntry* t = find(name)) return *t;
  throw FormatError(path_ + ": no tensor named " + name);
}

void SafetensorsFile::read(const TensorEntry& e, void* dst) const {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(path_ + ": cannot open: " + std::strerror(errno));
  uint64_t done = 0;
  auto* out = static_cast<char*>(dst);
  while (done < e.nbytes()) {
    const ssize_t n = ::pread(fd, out + done, e.nbytes() - done, static_cast<off_t>(data_start_ + e.begin + done));
    if (n <= 0) {
      const std::string why = n == 0 ? "unexpected end of file" : std::strerror(errno);
      ::close(fd);
      throw FormatError(path_ + ": tensor " + e.name + ": cannot read its bytes: " + why);
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    const uint64_t n = static_cast<uint64_t>(numel) * element_size(t.dtype);
    header[t.name] = {{"dtype", safetensors_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw FormatError(path + ": cannot create: " + std::strerror(errno));
    unsigned char len_bytes[8];
    uint64_t len = text.size();
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(len >> (8 * i));
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorView& t : tensors) {
      int64_t numel = 1;
      for (int64_t d : t.shape) numel *= d;
      out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(numel * element_size(t.dtype)));
    }
    if (!out) throw FormatError(path + ": write failed: " + std::strerror(errno));
  }
  // Rename last, so that a reader never sees half a file under the final name.
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw FormatError(path + ": cannot rename from " + tmp + ": " + std::strerror(errno));
}

}  // namespace paraplan::exec
