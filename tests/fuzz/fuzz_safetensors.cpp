// safetensors files (header JSON, dtypes, shapes, data offsets): refused with a FormatError naming the
// file, or read tensor by tensor; what is read writes back and reads again to the same tensors.
#include <vector>

#include "fuzz_util.hpp"
#include "paraplan/exec/safetensors.hpp"

using namespace paraplan::exec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch("in.safetensors");
  fuzz::write(path, data, size);
  try {
    const SafetensorsFile f(path);
    std::vector<std::vector<char>> bytes;
    std::vector<TensorView> views;
    for (const TensorEntry& t : f.tensors()) {
      bytes.emplace_back(t.nbytes());
      f.read(t, bytes.back().data());
    }
    for (size_t i = 0; i < f.tensors().size(); ++i)
      views.push_back({f.tensors()[i].name, f.tensors()[i].dtype, f.tensors()[i].shape, bytes[i].data()});
    const std::string out = fuzz::scratch("out.safetensors");
    write_safetensors(out, views, f.metadata());
    const SafetensorsFile again(out);
    fuzz::require(again.tensors().size() == f.tensors().size() && again.metadata() == f.metadata());
    for (size_t i = 0; i < views.size(); ++i) {
      const TensorEntry* t = again.find(views[i].name);
      fuzz::require(t && t->shape == views[i].shape && t->dtype == views[i].dtype);
      std::vector<char> b(t->nbytes());
      again.read(*t, b.data());
      fuzz::require(b == bytes[i]);
    }
  } catch (const FormatError&) {
  }
  return 0;
}
